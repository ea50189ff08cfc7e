package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image/gif"
	"image/png"
	"io"
	"os"
	"strings"

	"blip/data/preprocess/internal/jpeg"
)

// DefaultMaxPixels is Pillow's Image.MAX_IMAGE_PIXELS (about 179 million),
// above which Pillow warns of a decompression bomb. Decoding refuses images
// above it.
const DefaultMaxPixels = int64(1024 * 1024 * 1024 / 4 / 3)

// Decoder decodes image files to RGB.
type Decoder struct {
	// MaxPixels is the largest width*height accepted, checked from the
	// header before any pixel is decoded: 0 means DefaultMaxPixels, a
	// negative value means no limit.
	MaxPixels int64
}

// ErrTooManyPixels is wrapped by the error for images over the pixel limit.
var ErrTooManyPixels = errors.New("image exceeds the pixel limit (possible decompression bomb)")

// ErrUnknownFormat is wrapped by the error for data that is not a PNG, JPEG
// or GIF image.
var ErrUnknownFormat = errors.New("not a PNG, JPEG or GIF image")

// Load reads and decodes an image file with the default pixel limit.
func Load(path string) (*RGB, error) { return Decoder{}.Load(path) }

// Load reads and decodes an image file; errors name the file.
func (d Decoder) Load(path string) (*RGB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	return d.Decode(path, data)
}

// Decode decodes an in-memory PNG, JPEG or GIF (first frame) to RGB as
// Pillow's Image.open(...).convert("RGB") does. name is used in errors.
func (d Decoder) Decode(name string, data []byte) (*RGB, error) {
	img, err := d.decode(data)
	if err != nil {
		return nil, fmt.Errorf("preprocess: %s: %w", name, err)
	}
	return img, nil
}

// format identifies the image format from the leading bytes.
func format(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte{0xff, 0xd8}):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return "gif"
	}
	return ""
}

// checkSize applies the pixel limit to header dimensions.
func (d Decoder) checkSize(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("invalid image size %dx%d", w, h)
	}
	limit := d.MaxPixels
	if limit == 0 {
		limit = DefaultMaxPixels
	}
	if limit > 0 && int64(w)*int64(h) > limit {
		return fmt.Errorf("%dx%d = %d pixels: %w (%d)", w, h, int64(w)*int64(h), ErrTooManyPixels, limit)
	}
	return nil
}

// decode dispatches on the format after checking the header size.
func (d Decoder) decode(data []byte) (*RGB, error) {
	switch format(data) {
	case "png":
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("PNG header: %w", err)
		}
		if err := d.checkSize(cfg.Width, cfg.Height); err != nil {
			return nil, err
		}
		return decodePNG(data)
	case "jpeg":
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("JPEG header: %w", truncated(err))
		}
		if err := d.checkSize(cfg.Width, cfg.Height); err != nil {
			return nil, err
		}
		raw, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("JPEG: %w", truncated(err))
		}
		return jpegToRGB(raw)
	case "gif":
		cfg, err := gif.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("GIF header: %w", truncated(err))
		}
		if err := d.checkSize(cfg.Width, cfg.Height); err != nil {
			return nil, err
		}
		return decodeGIF(data)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("empty file: %w", ErrUnknownFormat)
	}
	return nil, ErrUnknownFormat
}

// ErrTruncated is wrapped by the error for files that end early.
var ErrTruncated = errors.New("file is truncated")

// truncationMessages are the texts the decoders use when data ends early
// (they do not all wrap io.ErrUnexpectedEOF).
var truncationMessages = []string{
	"unexpected EOF",
	"short Huffman data",    // JPEG entropy-coded data cut short
	"not enough pixel data", // PNG
	"not enough image data", // GIF
}

// truncated marks errors caused by data ending early with ErrTruncated.
func truncated(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w (%v)", ErrTruncated, err)
	}
	for _, m := range truncationMessages {
		if strings.Contains(err.Error(), m) {
			return fmt.Errorf("%w (%v)", ErrTruncated, err)
		}
	}
	return err
}
