// Package shapes is a small synthetic world for BLIP in which learning can be
// measured exactly: images of 1..K coloured shapes, their captions, VQA
// questions, ground truth, a vocabulary, exact metrics with their chance
// levels, and a noisy "web" variant for CapFilt.
//
// # The world
//
// An image (64x64 by default) holds 1..K objects (K <= 4). Each object has a
// shape (circle, square, triangle, star, diamond, cross, heart, hexagon), a
// colour (red, green, blue, yellow, purple, orange, pink, brown, white,
// black) and a size (small or large); objects of one image differ in
// (size, colour, shape), so a caption can name each. Objects sit in cells of
// a 3x3 grid, with a random offset inside their cell, so they never overlap
// nor leave the image. A lone object lies at one of five positions (left,
// right, top, bottom, center: the middle cell of an edge, or the centre
// cell). Several objects never share a diagonal of the grid, so each pair is
// clearly "left of", "right of", "above" or "below" (RelationOf). Shapes are
// anti-aliased by supersampling on a mid-grey background, optionally with a
// smooth texture and pixel noise (Config.Noise) mild enough that every
// colour stays clear.
//
// # Text
//
// Captions come from a small grammar, lowercase and without punctuation so
// that BLIP's pre_caption leaves them as they are: "a large red circle on
// the left", "on the left there is a large red circle", "a small blue
// square above a large green triangle", "there is a large green triangle
// below a small blue square". With several objects a caption is a chain,
// Objects[0] rel Objects[1] rel Objects[2] ..., read forwards or backwards.
// Every paraphrase of an image parses back (ParseCaption) to the same
// Description. Questions have one-word answers and are asked only when
// unambiguous ("what color is the circle" only with a single circle);
// yes/no questions come in yes-no pairs.
//
// # Metrics
//
// ScoreCaption / EvaluateCaptions give attribute accuracy and exact match;
// RetrievalHits and RetrievalRecall give Recall@K in both directions, where
// every image a text states exactly (Matches) is a hit; EvaluateVQA gives
// VQA accuracy (the official formula, which reduces to exact match here).
// ChanceVQA, ChanceRecall, BestConstantCaption and Chance give the chance
// level of each.
//
// # Determinism
//
// Image i depends only on the settings and i (its own random streams for
// layout, captions, questions and pixels), so the same settings give the
// same files byte for byte, whatever the number of workers. Across CPU
// architectures pixels may differ at a shape's edge: Go may fuse
// multiply-adds on arm64, ppc64 and s390x (not on amd64), which can move a
// supersample across an outline. Scenes, captions and questions do not
// depend on it.
package shapes
