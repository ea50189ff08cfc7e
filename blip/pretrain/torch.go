package pretrain

import _ "embed"

// TorchScript is torch_pretrain.py: the same pretraining step in plain
// PyTorch, which `blip bench pretrain` times next to blip's.
//
//go:embed torch_pretrain.py
var TorchScript []byte
