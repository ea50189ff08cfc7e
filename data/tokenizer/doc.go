// Package tokenizer is the BERT WordPiece tokenizer that BLIP uses
// (bert-base-uncased plus the [DEC] and [ENC] tokens), matching
// HuggingFace's BertTokenizer / the tokenizers library id for id:
// text cleaning, CJK splitting, accent stripping, lowercasing, punctuation
// splitting, greedy longest-match-first WordPiece with "##" continuations,
// [CLS] ... [SEP] framing, truncation and padding, and decoding with HF's
// clean-up of tokenization spaces.
//
// It also holds BLIP's caption and question normalisation (pre_caption and
// pre_question of the original code).
package tokenizer
