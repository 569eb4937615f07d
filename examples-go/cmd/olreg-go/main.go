// Command olreg-go pulls, pushes and manages Ollama models with the olreg Go
// binding.
//
//	olreg-go [flags] pull NAME
//	olreg-go [flags] push NAME [FROM]
//	olreg-go [flags] resolve NAME
//	olreg-go [flags] list
//	olreg-go [flags] show NAME
//	olreg-go [flags] rm NAME
//	olreg-go [flags] prune
//	olreg-go [flags] verify [NAME]
//	olreg-go version
//
// Ctrl-C cancels a running pull or push (what was downloaded is kept for the
// next pull).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	olreg "github.com/olreg/olreg-go"
)

func main() {
	os.Exit(run())
}

func usage() {
	fmt.Fprintf(os.Stderr, `usage: olreg-go [flags] COMMAND [ARGS]

commands:
  pull NAME           download a model into the store
  push NAME [FROM]    upload the local model FROM (default NAME) as NAME
  resolve NAME        print a model's manifest from its registry
  list                list the local models
  show NAME           print a local model's manifest
  rm NAME             remove a local model (blobs stay until prune)
  prune               delete blobs no model needs
  verify [NAME]       re-hash a model's blobs, or every blob
  version             print the library's version

flags:
`)
	flag.PrintDefaults()
}

func run() int {
	var opts olreg.Options
	var verbose, quiet bool
	flag.StringVar(&opts.ModelsDir, "models", "", "store root (default $OLLAMA_MODELS or ~/.ollama/models)")
	flag.StringVar(&opts.NameMask, "mask", "", "mask completing short names (default registry.ollama.ai/library/_:latest)")
	flag.StringVar(&opts.KeyFile, "key", "", "OpenSSH Ed25519 key signing requests (default ~/.ollama/id_ed25519)")
	flag.BoolVar(&opts.NoKey, "no-key", false, "send anonymous requests")
	flag.BoolVar(&opts.Insecure, "insecure", false, "accept any TLS certificate")
	flag.IntVar(&opts.Streams, "streams", 0, "parallel requests per call (default: CPU count)")
	flag.BoolVar(&verbose, "v", false, "log what the library does")
	flag.BoolVar(&quiet, "q", false, "no progress line")
	flag.Usage = usage
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		usage()
		return 2
	}
	if args[0] == "version" {
		fmt.Println(olreg.Version())
		return 0
	}
	if verbose {
		opts.LogLevel = olreg.LogDebug
		opts.Logger = func(level olreg.LogLevel, msg string) {
			fmt.Fprintf(os.Stderr, "%s: %s\n", level, msg)
		}
	}

	client, err := olreg.Open(opts)
	if err != nil {
		return fail(err)
	}
	defer client.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	need := func(min, max int) bool {
		if n := len(args) - 1; n < min || n > max {
			usage()
			return false
		}
		return true
	}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	var bar *progressLine
	var progress func(olreg.Progress)
	if !quiet {
		bar = &progressLine{}
		progress = bar.update
	}

	switch args[0] {
	case "pull":
		if !need(1, 1) {
			return 2
		}
		m, err := client.Pull(ctx, args[1], progress)
		bar.end()
		if err != nil {
			return fail(err)
		}
		fmt.Printf("pulled %s (%s, %s)\n", args[1], m.Digest, size(m.TotalSize))
	case "push":
		if !need(1, 2) {
			return 2
		}
		err := client.Push(ctx, args[1], arg(2), progress)
		bar.end()
		if err != nil {
			return fail(err)
		}
		fmt.Printf("pushed %s\n", args[1])
	case "resolve":
		if !need(1, 1) {
			return 2
		}
		m, err := client.Resolve(ctx, args[1])
		if err != nil {
			return fail(err)
		}
		fmt.Printf("%s\n", m.Bytes)
	case "list":
		if !need(0, 0) {
			return 2
		}
		names, err := client.List()
		if err != nil {
			return fail(err)
		}
		for _, n := range names {
			fmt.Println(n)
		}
	case "show":
		if !need(1, 1) {
			return 2
		}
		data, err := client.Show(args[1])
		if err != nil {
			return fail(err)
		}
		fmt.Printf("%s\n", data)
	case "rm":
		if !need(1, 1) {
			return 2
		}
		if err := client.Remove(args[1]); err != nil {
			return fail(err)
		}
	case "prune":
		if !need(0, 0) {
			return 2
		}
		r, err := client.Prune()
		if err != nil {
			return fail(err)
		}
		fmt.Printf("removed %d blobs, freed %s\n", r.BlobsRemoved, size(r.BytesFreed))
	case "verify":
		if !need(0, 1) {
			return 2
		}
		problems, err := client.Verify(ctx, arg(1), progress)
		bar.end()
		if err != nil {
			return fail(err)
		}
		for _, p := range problems {
			fmt.Println(p)
		}
		if len(problems) > 0 {
			return 1
		}
		fmt.Println("ok")
	default:
		usage()
		return 2
	}
	return 0
}

// fail prints err and returns the exit status: 130 for an interrupt, 3 for
// a model that does not exist, 1 otherwise.
func fail(err error) int {
	fmt.Fprintf(os.Stderr, "olreg-go: %v\n", err)
	switch {
	case errors.Is(err, context.Canceled):
		return 130
	case errors.Is(err, olreg.ErrNotFound):
		return 3
	}
	return 1
}

// progressLine draws one self-overwriting status line on stderr. A nil
// *progressLine draws nothing.
type progressLine struct {
	drawn bool
	width int
}

func (b *progressLine) update(p olreg.Progress) {
	if b == nil {
		return
	}
	var line string
	switch p.Event {
	case olreg.EventRetrying, olreg.EventFailed:
		b.end()
		fmt.Fprintf(os.Stderr, "%s %s: %s\n", p.Event, short(p.Digest), p.Message)
		return
	default:
		pct := 0.0
		if p.Total > 0 {
			pct = 100 * float64(p.Completed) / float64(p.Total)
		}
		line = fmt.Sprintf("%-9s %d/%d blobs  %s / %s  %5.1f%%", p.Event, p.LayersDone, p.LayersTotal, size(p.Completed), size(p.Total), pct)
	}
	pad := ""
	if n := b.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(os.Stderr, "\r%s%s", line, pad)
	b.drawn, b.width = true, len(line)
}

func (b *progressLine) end() {
	if b != nil && b.drawn {
		fmt.Fprintln(os.Stderr)
		b.drawn, b.width = false, 0
	}
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
