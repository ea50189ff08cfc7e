package jpeg

// This file is not from the Go standard library: it exposes the decoder's
// component planes instead of an image.Image.

import "io"

// Component describes one colour component of a frame.
type Component struct {
	ID   uint8 // component identifier from the frame header
	H, V int   // sampling factors (forced to 1x1 for a single component)
}

// Raw is a decoded JPEG before upsampling and colour conversion.
type Raw struct {
	Width, Height int
	// Comps and Planes have one entry per component. Plane i holds at least
	// ceil(Width*H_i/Hmax) x ceil(Height*V_i/Vmax) samples (padded to whole
	// blocks) with row stride Strides[i].
	Comps   []Component
	Planes  [][]byte
	Strides []int
	// JFIF and Adobe report the APP0 "JFIF" and APP14 "Adobe" markers, which
	// decide the colour space as in libjpeg's default_decompress_parms.
	JFIF           bool
	Adobe          bool
	AdobeTransform uint8
	Progressive    bool
}

// Config is what the frame header says.
type Config struct {
	Width, Height, Components int
}

// Decode decodes a baseline, extended sequential or progressive 8-bit
// Huffman JPEG into its component planes.
func Decode(r io.Reader) (*Raw, error) {
	var d decoder
	if err := d.decode(r, false); err != nil {
		return nil, err
	}
	raw := &Raw{
		Width: d.width, Height: d.height,
		JFIF: d.jfif, Adobe: d.adobeTransformValid, AdobeTransform: d.adobeTransform,
		Progressive: d.progressive,
	}
	for i := 0; i < d.nComp; i++ {
		raw.Comps = append(raw.Comps, Component{ID: d.comp[i].c, H: d.comp[i].h, V: d.comp[i].v})
		raw.Planes = append(raw.Planes, d.planes[i])
		raw.Strides = append(raw.Strides, d.strides[i])
	}
	return raw, nil
}

// DecodeConfig reads the headers up to the frame header.
func DecodeConfig(r io.Reader) (Config, error) {
	var d decoder
	if err := d.decode(r, true); err != nil {
		return Config{}, err
	}
	if d.nComp == 0 {
		return Config{}, FormatError("missing SOF marker")
	}
	return Config{Width: d.width, Height: d.height, Components: d.nComp}, nil
}
