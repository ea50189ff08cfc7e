// Package torchpt reads checkpoints written by PyTorch's torch.save: the zip
// format (torch >= 1.6: <dir>/data.pkl plus one raw file per storage under
// <dir>/data/) and the older non-zip "legacy" format (a run of pickles followed
// by the raw storages).
//
// The pickle itself is run by github.com/nlpodyssey/gopickle, but never on
// bytes that have not first been checked by a scan of their opcodes (every
// length-prefixed argument must fit in the data), and with find_class and
// persistent_load replaced: globals are inert records (nothing is ever
// executed), tensors are rebuilt from torch._utils._rebuild_tensor_v2 and
// friends as views (storage, offset, size, stride), and storages are not read
// until a tensor is asked for. Any panic inside the unpickler is turned into an
// error, so a corrupt or hostile file gives an error naming the file, never a
// crash.
//
// Open returns an Archive; StateDict picks the mapping of named tensors out of
// it (the root dict, or a nested one such as {"model": state_dict}).
package torchpt
