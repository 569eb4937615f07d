package olreg

/*
#include "shim.h"
*/
import "C"

import "encoding/json"

// Manifest is a model's manifest: its exact bytes (their sha256 is Digest)
// and the blobs it lists.
type Manifest struct {
	Digest    string  // "sha256:<hex>" of Bytes
	Bytes     []byte  // the manifest exactly as the registry sent it
	Config    Layer   // the config blob (zero if the manifest names none)
	Layers    []Layer // the layers, in manifest order, config not included
	TotalSize int64   // the size of every distinct blob, config included
}

// Layer is one blob a manifest lists.
type Layer struct {
	Digest    string `json:"digest"`    // "sha256:<hex>"
	MediaType string `json:"mediaType"` // "" when the manifest gives none
	Size      int64  `json:"size"`
}

// takeManifest copies and frees a C manifest.
func takeManifest(m *C.olreg_manifest) *Manifest {
	defer C.olreg_manifest_free(m)
	var n C.size_t
	b := C.olreg_manifest_bytes(m, &n)
	out := &Manifest{
		Digest:    C.GoString(C.olreg_manifest_digest(m)),
		Bytes:     goBytes(b, n),
		TotalSize: int64(C.olreg_manifest_total_size(m)),
	}
	count := int(C.olreg_manifest_layer_count(m))
	out.Layers = make([]Layer, 0, count)
	for i := 0; i < count; i++ {
		idx := C.size_t(i)
		out.Layers = append(out.Layers, Layer{
			Digest:    C.GoString(C.olreg_manifest_layer_digest(m, idx)),
			MediaType: goStringOrEmpty(C.olreg_manifest_layer_media_type(m, idx)),
			Size:      int64(C.olreg_manifest_layer_size(m, idx)),
		})
	}
	// The C ABI does not expose the config blob; the library has validated
	// these bytes, so reading it back from them is safe.
	var doc struct {
		Config *Layer `json:"config"`
	}
	if json.Unmarshal(out.Bytes, &doc) == nil && doc.Config != nil {
		out.Config = *doc.Config
	}
	return out
}
