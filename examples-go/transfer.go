package olreg

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"strings"
)

// Copy copies the model src from its registry to dst on another (or the
// same) registry without touching the store: blobs stream through, checked
// against their digests on the way; blobs dst already has are skipped, and
// on the same registry they are mounted. The manifest's exact bytes are put
// last, so a failed copy leaves no manifest at dst. progress works as for
// Pull (bytes count what was sent).
func (c *Client) Copy(ctx context.Context, src, dst string, progress func(Progress)) (*Manifest, error) {
	csrc, err := cName(src)
	if err != nil {
		return nil, err
	}
	defer free(csrc)
	cdst, err := cName(dst)
	if err != nil {
		return nil, err
	}
	defer free(cdst)
	cl, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.end()
	sink, h, release := newProgressHandle(progress)
	defer release()

	var m *C.olreg_manifest
	var cerr *C.olreg_error
	st := C.olreg_go_copy(cl.ptr, csrc, cdst, h, cl.tok, &m, &cerr)
	return finishWithManifest(cl, sink, st, m, cerr)
}

// Export writes the local model name as an OCI image layout at dest: a
// directory, or a tar archive of one when dest ends in ".tar". An existing
// layout is added to. The index entry's org.opencontainers.image.ref.name is
// the tag; manifest and blobs are the store's bytes. progress works as for
// Pull.
func (c *Client) Export(ctx context.Context, name, dest string, progress func(Progress)) error {
	cname, err := cName(name)
	if err != nil {
		return err
	}
	defer free(cname)
	cdest, err := cPath(dest)
	if err != nil {
		return err
	}
	defer free(cdest)
	cl, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer cl.end()
	sink, h, release := newProgressHandle(progress)
	defer release()

	var cerr *C.olreg_error
	st := C.olreg_go_export(cl.ptr, cname, cdest, h, cl.tok, &cerr)
	sink.rethrow()
	if st != C.OLREG_OK {
		return cl.fail(st, cerr)
	}
	return nil
}

// Import reads an image from the OCI image layout src (a directory or a tar
// archive) into the store as name. ref ("" for the only image) picks the
// index entry by its ref name (the tag) or full name; a layout holding
// several images without ref fails with ErrInvalidArgument, the message
// listing them. The layout is read as untrusted input: blobs appear in the
// store only once every one hashed right, and the manifest is linked last.
func (c *Client) Import(ctx context.Context, src, name, ref string, progress func(Progress)) (*Manifest, error) {
	csrc, err := cPath(src)
	if err != nil {
		return nil, err
	}
	defer free(csrc)
	cname, err := cName(name)
	if err != nil {
		return nil, err
	}
	defer free(cname)
	var cref *C.char
	if ref != "" {
		if cref, err = cName(ref); err != nil {
			return nil, err
		}
		defer free(cref)
	}
	cl, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.end()
	sink, h, release := newProgressHandle(progress)
	defer release()

	var m *C.olreg_manifest
	var cerr *C.olreg_error
	st := C.olreg_go_import(cl.ptr, csrc, cname, cref, h, cl.tok, &m, &cerr)
	return finishWithManifest(cl, sink, st, m, cerr)
}

// finishWithManifest ends a call that returns a manifest: the manifest on
// success, a progress func's panic re-raised, else the call's error.
func finishWithManifest(cl *call, sink *progressSink, st C.olreg_status, m *C.olreg_manifest, cerr *C.olreg_error) (*Manifest, error) {
	var out *Manifest
	if st == C.OLREG_OK {
		out = takeManifest(m)
	}
	sink.rethrow()
	if st != C.OLREG_OK {
		return nil, cl.fail(st, cerr)
	}
	return out, nil
}

// cPath converts a file-system path for C; an embedded NUL is invalid.
func cPath(path string) (*C.char, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return nil, invalid(StatusInvalidArgument, "invalid path "+quote(path)+": contains a NUL byte")
	}
	return C.CString(path), nil
}
