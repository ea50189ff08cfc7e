package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"blip/gpu"
)

func devicesCmd() *cli.Command {
	return &cli.Command{
		Name:  "devices",
		Usage: "list compute devices (Vulkan and the CPU reference) and what they support",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "JSON output"}},
		Action: func(c *cli.Context) error {
			ds, errs := gpu.ListDevices(options(c))
			if c.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(ds)
			}
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, "blip:", e)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "backend\tindex\tname\ttype\tmemory\tunits\tsubgroup\tshared\tmax bind\t16-bit weights\tfp16\tbf16\tcoopmat\ttensor GEMM\tdriver")
			for _, d := range ds {
				coop := ""
				for _, x := range []struct {
					ok   bool
					name string
				}{{d.CoopMatKHR, "KHR"}, {d.CoopMatNV, "NV"}, {d.CoopMat2NV, "NV2"}} {
					if x.ok {
						if coop != "" {
							coop += ","
						}
						coop += x.name
					}
				}
				if coop == "" {
					coop = "no"
				}
				tensor := d.CoopGemm
				if tensor == "" {
					tensor = "no"
				}
				units := "-"
				if d.ComputeUnits > 0 {
					units = fmt.Sprint(d.ComputeUnits)
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%.1f GiB\t%s\t%d\t%d KiB\t%d MiB\t%v\t%v\t%v\t%s\t%s\t%s\n",
					d.Backend, d.Index, d.Name, d.Type, float64(d.MemoryBytes)/(1<<30), units, d.SubgroupSize,
					d.SharedMemBytes/1024, d.MaxBindBytes>>20, yes(d.Storage16), yes(d.FP16), yes(d.BF16), coop, tensor, d.Driver)
			}
			w.Flush()
			var vkList []gpu.DeviceInfo
			for _, d := range ds {
				if d.Backend == "vulkan" {
					vkList = append(vkList, d)
				}
			}
			if best := gpu.PickBest(vkList); best >= 0 {
				fmt.Printf("default: vulkan device %d (%s); override with --device N or BLIP_DEVICE\n", vkList[best].Index, vkList[best].Name)
			} else {
				fmt.Println("default: cpu (no Vulkan device)")
			}
			return nil
		},
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
