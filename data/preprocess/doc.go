// Package preprocess loads images and turns them into model inputs exactly as
// HuggingFace's PIL-backed BLIP image processor does: decode, convert to RGB
// as Pillow's Image.convert("RGB") would, resize with Pillow's antialiased
// resampling (bicubic by default) including its fixed-point arithmetic and
// 8-bit rounding after each pass, rescale by 1/255 and normalise with the
// CLIP mean and standard deviation, giving CHW float32 pixels.
//
// Decoding aims at Pillow's bytes too: JPEGs are decoded with libjpeg's
// integer IDCT, "fancy" chroma upsampling and colour conversion (CMYK and
// YCCK included), 16-bit PNGs are reduced the way Pillow reduces them, and
// alpha is dropped without compositing. Every decode first reads the header
// and refuses images above a pixel limit (decompression-bomb guard).
//
// EXIF orientation is not applied, as HF processors do not apply it either.
package preprocess
