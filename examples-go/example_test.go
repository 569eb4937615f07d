package olreg_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"

	olreg "github.com/olreg/olreg-go"
)

// Pull a model into Ollama's store with a progress line; Ctrl-C cancels.
func Example() {
	client, err := olreg.Open(olreg.Options{
		ModelsDir: os.Getenv("OLLAMA_MODELS"), // "" : ~/.ollama/models
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	m, err := client.Pull(ctx, "llama3.2:1b", func(p olreg.Progress) {
		fmt.Fprintf(os.Stderr, "\r%-9s %d/%d bytes", p.Event, p.Completed, p.Total)
	})
	switch {
	case errors.Is(err, olreg.ErrNotFound):
		log.Fatal("no such model")
	case errors.Is(err, context.Canceled):
		log.Fatal("interrupted")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("\npulled", m.Digest, len(m.Layers), "layers")
}
