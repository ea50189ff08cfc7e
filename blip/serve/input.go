package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"blip/data/preprocess"
)

// apiError is an error with the HTTP status it answers with; handlers
// write it as {"error": msg}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// withImage is embedded by requests that carry an image: in JSON (and form
// or query fields) it is base64, optionally a data: URL; multipart and raw
// bodies carry the bytes.
type withImage struct {
	Image string `json:"image,omitempty"`
}

func (w *withImage) imageField() *string { return &w.Image }

type imageCarrier interface{ imageField() *string }

// readRequest fills dst (a pointer to a request struct) from r: the query
// string first, then the body by Content-Type (application/json,
// multipart/form-data with an "image" file part, or raw image bytes as
// image/* or application/octet-stream). Unknown fields are errors. It
// returns the image bytes, if any.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request, dst any) ([]byte, error) {
	if err := setFields(dst, r.URL.Query()); err != nil {
		return nil, err
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, &apiError{http.StatusUnsupportedMediaType, "missing Content-Type: send application/json, multipart/form-data or the image bytes as image/*"}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, &apiError{http.StatusUnsupportedMediaType, fmt.Sprintf("bad Content-Type %q: %v", ct, err)}
	}
	var img []byte
	switch {
	case mt == "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return nil, badRequest("invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		if dec.More() {
			return nil, badRequest("invalid JSON body: data after the object")
		}
	case mt == "multipart/form-data":
		if params["boundary"] == "" {
			return nil, badRequest("multipart body without a boundary")
		}
		img, err = readMultipart(multipart.NewReader(r.Body, params["boundary"]), dst)
		if err != nil {
			return nil, err
		}
	case strings.HasPrefix(mt, "image/") || mt == "application/octet-stream":
		img, err = io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err)
		}
	default:
		return nil, &apiError{http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Type %q: send application/json, multipart/form-data or the image bytes as image/*", mt)}
	}
	if c, ok := dst.(imageCarrier); ok && img == nil {
		if b64 := *c.imageField(); b64 != "" {
			img, err = decodeBase64(b64)
			if err != nil {
				return nil, err
			}
		}
	}
	return img, nil
}

// bodyError maps a body read error: over the limit is 413.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit)}
	}
	return badRequest("reading the request body: %v", err)
}

// readMultipart reads the parts: "image" is the image's bytes, every other
// part a field value.
func readMultipart(mr *multipart.Reader, dst any) ([]byte, error) {
	var img []byte
	vals := url.Values{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bodyErrorOr(err, "bad multipart body")
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, bodyErrorOr(err, "bad multipart body")
		}
		name := p.FormName()
		switch {
		case name == "":
			return nil, badRequest("multipart part without a form name")
		case name == "image" || (name == "file" && img == nil):
			if img != nil {
				return nil, badRequest("more than one image part")
			}
			img = data
		default:
			vals.Add(name, string(data))
		}
	}
	if err := setFields(dst, vals); err != nil {
		return nil, err
	}
	return img, nil
}

func bodyErrorOr(err error, what string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return bodyError(err)
	}
	return badRequest("%s: %v", what, err)
}

// decodeBase64 accepts standard or URL-safe base64, padded or not, with an
// optional data: URL prefix.
func decodeBase64(s string) ([]byte, error) {
	if strings.HasPrefix(s, "data:") {
		i := strings.Index(s, ",")
		if i < 0 || !strings.Contains(s[:i], ";base64") {
			return nil, badRequest("image: a data: URL must be base64 (data:image/...;base64,...)")
		}
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, badRequest("image is not valid base64")
}

// setFields sets dst's fields from string values by their JSON names:
// strings, ints, floats, bools, string lists (repeated values), and
// pointers to those. Unknown names and unparsable values are errors.
func setFields(dst any, vals url.Values) error {
	if len(vals) == 0 {
		return nil
	}
	fields := map[string]reflect.Value{}
	collectFields(reflect.ValueOf(dst).Elem(), fields)
	for name, vs := range vals {
		f, ok := fields[name]
		if !ok {
			return badRequest("unknown field %q", name)
		}
		if err := setValue(f, name, vs); err != nil {
			return err
		}
	}
	return nil
}

func collectFields(v reflect.Value, out map[string]reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			collectFields(v.Field(i), out)
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		out[name] = v.Field(i)
	}
}

func setValue(f reflect.Value, name string, vs []string) error {
	if f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String {
		f.Set(reflect.ValueOf(append([]string(nil), vs...)))
		return nil
	}
	if len(vs) != 1 {
		return badRequest("field %q given %d times", name, len(vs))
	}
	s := vs[0]
	if f.Kind() == reflect.Pointer {
		p := reflect.New(f.Type().Elem())
		if err := setValue(p.Elem(), name, vs); err != nil {
			return err
		}
		f.Set(p)
		return nil
	}
	bad := func(what string) error { return badRequest("field %q: %q is not %s", name, s, what) }
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return bad("an integer")
		}
		f.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return bad("a non-negative integer")
		}
		f.SetUint(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return bad("a number")
		}
		f.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return bad("true or false")
		}
		f.SetBool(b)
	default:
		return badRequest("field %q cannot be given as a form value", name)
	}
	return nil
}

// decodeImage decodes request image bytes under the pixel limit.
func (s *Server) decodeImage(data []byte) (img *preprocess.RGB, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, badRequest("cannot decode the image: %v", r)
		}
	}()
	if len(data) == 0 {
		return nil, badRequest("no image: send it as a multipart \"image\" file, as the raw body (Content-Type image/*), or base64 in the JSON field \"image\"")
	}
	img, err = preprocess.Decoder{MaxPixels: s.cfg.MaxPixels}.Decode("image", data)
	switch {
	case errors.Is(err, preprocess.ErrTooManyPixels):
		return nil, &apiError{http.StatusRequestEntityTooLarge, strings.TrimPrefix(err.Error(), "preprocess: ")}
	case err != nil:
		return nil, &apiError{http.StatusBadRequest, "cannot decode the image: " + strings.TrimPrefix(strings.TrimPrefix(err.Error(), "preprocess: "), "image: ")}
	}
	return img, nil
}
