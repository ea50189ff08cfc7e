// Package shaders holds blip's GLSL compute shaders and their SPIR-V, compiled
// by `make shaders` with glslc and committed, embedded here for the Vulkan
// backend.
package shaders

import (
	"embed"
	"encoding/binary"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed spv/*.spv
var spv embed.FS

const spirvMagic = 0x07230203

// SPIRV returns the words of shaders/spv/<name>.spv.
func SPIRV(name string) ([]uint32, error) {
	b, err := spv.ReadFile("spv/" + name + ".spv")
	if err != nil {
		return nil, fmt.Errorf("shader %q: not embedded (run make shaders)", name)
	}
	if len(b) < 20 || len(b)%4 != 0 {
		return nil, fmt.Errorf("shader %q: %d bytes is not SPIR-V", name, len(b))
	}
	words := make([]uint32, len(b)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	if words[0] != spirvMagic {
		return nil, fmt.Errorf("shader %q: bad SPIR-V magic %#x", name, words[0])
	}
	return words, nil
}

// Names lists the embedded shaders.
func Names() []string {
	ents, _ := fs.ReadDir(spv, "spv")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".spv"))
	}
	sort.Strings(out)
	return out
}
