// Command nv2khr rewrites a SPIR-V module that uses NV cooperative matrices
// (SPV_NV_cooperative_matrix, which Debian 12's glslc compiles) into one
// that uses the Khronos extension (SPV_KHR_cooperative_matrix, offered by
// AMD, Intel, NVIDIA and lavapipe drivers), so that one GLSL source serves
// both.
//
//	go run ./shaders/nv2khr in.spv out.spv
//
// The output is written atomically. Validate it with a spirv-val that knows
// the KHR extension (SPIRV-Tools 2023.4 or newer).
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: nv2khr in.spv out.spv")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "nv2khr:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	k, err := Translate(b)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".nv2khr-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(k); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
