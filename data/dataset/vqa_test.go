package dataset

import (
	"io"
	"math"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadVQAOfficial(t *testing.T) {
	set, err := ReadVQAOfficial(fixture("vqa/OpenEnded_mscoco_val2014_questions.json"),
		fixture("vqa/mscoco_val2014_annotations.json"), "/coco/val2014", VQAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 3 {
		t.Fatalf("%d questions", set.Len())
	}
	q := set.Questions[0]
	if q.QuestionID != "262148000" || q.Question != "Where is he looking?" || q.ImageID != "262148" ||
		q.Image != "COCO_val2014_000000262148.jpg" || q.Path != filepath.Join("/coco/val2014", "COCO_val2014_000000262148.jpg") ||
		q.MultipleChoiceAnswer != "down" || q.QuestionType != "none of the above" || q.AnswerType != "other" ||
		q.Dataset != "vqa" || q.Index != 0 {
		t.Errorf("question 0: %+v", q)
	}
	wantAns := []string{"down", "down", "at table", "skateboard", "down", "table", "down", "down", "down", "down"}
	if !reflect.DeepEqual(q.Answers, wantAns) {
		t.Errorf("answers %q", q.Answers)
	}
	// Joined by question_id, not by position.
	if q := set.Questions[2]; q.QuestionID != "393225000" || q.AnswerType != "yes/no" || len(q.Answers) != 10 || q.Answers[3] != "no" {
		t.Errorf("question 2: %+v", q)
	}
	// The Indexed view carries the question and the answers.
	s, err := set.At(1)
	if err != nil || s.Caption != "What are the people in the background doing?" || len(s.Captions) != 10 || s.Ext != "jpg" || s.ImageID != "262148" {
		t.Errorf("At(1) = %+v, %v", s, err)
	}
	src, _ := set.Open()
	n := 0
	for {
		if _, err := src.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("Open yielded %d", n)
	}
	if _, err := set.At(3); err == nil {
		t.Error("At out of range: no error")
	}

	// Test split: no annotations; test-dev images live in test2015.
	set, err = ReadVQAOfficial(fixture("vqa/OpenEnded_mscoco_test-dev2015_questions.json"), "", "/coco/test2015",
		VQAOptions{MaxQuestionWords: 50})
	if err != nil {
		t.Fatal(err)
	}
	if q := set.Questions[0]; q.Image != "COCO_test2015_000000000001.jpg" || q.Answers != nil || q.Question != "what color is the bus?" {
		t.Errorf("test-dev question 0: %+v", q)
	}
	set, err = ReadVQAOfficial(fixture("vqa/OpenEnded_mscoco_test-dev2015_questions.json"), "", "", VQAOptions{Split: "custom"})
	if err != nil || set.Questions[1].Path != "COCO_custom_000000581929.jpg" {
		t.Errorf("split override: %v %v", set, err)
	}
}

func TestReadVQAJSON(t *testing.T) {
	roots := VQARoots{VQA: "/coco", VG: "/vg"}
	set, err := ReadVQAJSON(fixture("vqa_train.json"), roots, VQAOptions{MaxQuestionWords: 50})
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 3 {
		t.Fatalf("%d questions", set.Len())
	}
	q := set.Questions[1]
	if q.QuestionID != "393225000" || q.Question != "is this a real cat?" || q.Dataset != "vqa" ||
		q.Path != filepath.Join("/coco", "val2014/COCO_val2014_000000393225.jpg") || len(q.Answers) != 10 {
		t.Errorf("question 1: %+v", q)
	}
	ans, ws := set.Questions[0].AnswerWeights()
	if !reflect.DeepEqual(ans, []string{"down", "at table", "skateboard", "table"}) {
		t.Errorf("answers %q", ans)
	}
	for i, w := range []float64{0.7, 0.1, 0.1, 0.1} {
		if math.Abs(ws[i]-w) > 1e-12 {
			t.Errorf("weight %d = %v, want %v", i, ws[i], w)
		}
	}
	vg := set.Questions[2]
	if vg.Dataset != "vg" || vg.QuestionID != "" || vg.Path != filepath.Join("/vg", "image/2377385.jpg") || !reflect.DeepEqual(vg.Answers, []string{"blue"}) {
		t.Errorf("vg question: %+v", vg)
	}
	if a, w := vg.AnswerWeights(); !reflect.DeepEqual(a, []string{"blue"}) || !reflect.DeepEqual(w, []float64{0.2}) {
		t.Errorf("vg weights %q %v", a, w)
	}

	set, err = ReadVQAJSON(fixture("vqa_test.json"), VQARoots{VQA: "/coco"}, VQAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if q := set.Questions[0]; q.QuestionID != "10" || q.Answers != nil || q.Question != "What color is the bus?" {
		t.Errorf("test question: %+v", q)
	}

	al, err := ReadAnswerList(fixture("answer_list.json"))
	if err != nil || len(al) != 12 || al[8] != "brushing teeth" || al[11] != "1,000" {
		t.Errorf("answer list %q %v", al, err)
	}
}

func TestVQAReadersErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		f := filepath.Join(dir, name)
		writeFile(t, f, []byte(body))
		return f
	}
	roots := VQARoots{VQA: dir}
	for i, c := range []struct{ body, want string }{
		{`[{"question": "q", "image": "a.jpg"}, {"image": "a.jpg"}]`, `entry 1: missing "question"`},
		{`[{"question": "q"}]`, `entry 0: missing or empty "image"`},
		{`[{"question": "q", "image": "a.jpg", "answer": ["x", 3]}]`, `entry 0: "answer"[1] is not a string`},
		{`[{"question": "q", "image": "a.jpg", "answer": {"x": 1}}]`, `entry 0: "answer" is neither`},
		{`[{"question": "q", "image": "a.jpg", "dataset": "gqa"}]`, `entry 0: unknown "dataset" "gqa"`},
		{`[{"question": "q", "image": "a.jpg", "dataset": "vg"}]`, `entry 0: "dataset" is "vg" but no Visual Genome image root`},
		{`[{"question": "q", "image": "a.jpg", "question_id": [1]}]`, `entry 0: "question_id"`},
		{`[{"question": 5, "image": "a.jpg"}]`, `entry 0: "question" is not a string`},
		{`[7]`, `entry 0: not a JSON object`},
		{`{}`, `not a JSON list`},
	} {
		f := write("b"+itoa(i)+".json", c.body)
		_, err := ReadVQAJSON(f, roots, VQAOptions{})
		wantErr(t, c.body, err, f, c.want)
	}

	qs := write("q.json", `{"data_subtype": "val2014", "questions": [
		{"image_id": 1, "question": "a?", "question_id": 10},
		{"image_id": 2, "question": "b?", "question_id": 20}]}`)
	ann := func(name, anns string) string { return write(name, `{"annotations": [`+anns+`]}`) }
	a10 := `{"question_id": 10, "image_id": 1, "answers": [{"answer": "x"}]}`
	a20 := `{"question_id": 20, "image_id": 2, "answers": [{"answer": "y"}]}`
	for i, c := range []struct {
		anns, file, want string
	}{
		{a10, qs, `question 1: question_id 20 has no annotation`},
		{a10 + `,` + `{"question_id": 20, "image_id": 3, "answers": []}`, "a1.json", `annotation 1: image_id 3, but question 1`},
		{a10 + `,` + a20 + `,` + `{"question_id": 30, "image_id": 3, "answers": []}`, "a2.json", `annotation 2: question_id 30 is not in`},
		{a10 + `,` + a10, "a3.json", `annotation 1: question_id 10 repeats annotation 0`},
		{a10 + `,` + `{"question_id": 20, "image_id": 2, "answers": [{"answer": 1}]}`, "a4.json", `annotation 1: "answers"[0]: missing or non-string "answer"`},
		{a10 + `,` + `{"question_id": 20, "image_id": 2}`, "a5.json", `annotation 1: missing "answers"`},
		{a10 + `,` + `{"question_id": -20, "image_id": 2, "answers": []}`, "a6.json", `annotation 1: "question_id" is not a non-negative integer`},
		{a10 + `,` + `{"question_id": 20, "image_id": 2, "answers": [], "answer_type": 4}`, "a7.json", `annotation 1: "answer_type" is not a string`},
	} {
		af := ann("a"+itoa(i)+".json", c.anns)
		_, err := ReadVQAOfficial(qs, af, dir, VQAOptions{})
		file := c.file
		if file != qs {
			file = af
		}
		wantErr(t, c.anns, err, file, c.want)
	}
	for i, c := range []struct{ body, want string }{
		{`{"data_subtype": "val2014", "questions": [{"image_id": 1, "question": "a?", "question_id": 10}, {"image_id": 1, "question": "a?", "question_id": 10}]}`, `question 1: question_id 10 repeats question 0`},
		{`{"data_subtype": "val2014", "questions": [{"image_id": "x", "question": "a?", "question_id": 10}]}`, `question 0: "image_id" is not a non-negative integer`},
		{`{"data_subtype": "val2014", "questions": [{"image_id": 1, "question_id": 10}]}`, `question 0: missing "question"`},
		{`{"data_subtype": "val2014", "questions": [{"image_id": 1, "question": "a?"}]}`, `question 0: missing "question_id"`},
		{`{"questions": [{"image_id": 1, "question": "a?", "question_id": 10}]}`, `missing "data_subtype"`},
		{`{"data_subtype": "val2014"}`, `missing "questions"`},
		{`[1, 2]`, `not a VQA questions object`},
		{`{"data_subtype": "val2014", "questions": {}}`, `"questions" is not a list`},
		{`{"data_subtype": 2014, "questions": []}`, `"data_subtype" is not a string`},
	} {
		f := write("q"+itoa(i)+".json", c.body)
		_, err := ReadVQAOfficial(f, "", dir, VQAOptions{})
		wantErr(t, c.body, err, f, c.want)
	}
	_, err := ReadVQAOfficial(qs, filepath.Join(dir, "nope.json"), dir, VQAOptions{})
	wantErr(t, "missing annotations", err, "nope.json")

	f := write("al.json", `["yes", 2]`)
	_, err = ReadAnswerList(f)
	wantErr(t, "answer list number", err, f, "entry 1: not a string")
	f = write("al2.json", `{"yes": 1}`)
	_, err = ReadAnswerList(f)
	wantErr(t, "answer list object", err, f, "not a JSON list")
}
