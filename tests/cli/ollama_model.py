"""A tiny model the real Ollama loads and runs, for tests/cli/test_ollama.py.

`write_gguf` writes a llama-architecture GGUF file (PyPI `gguf`) of about
half a megabyte: two layers of random F32 weights and a SentencePiece-style
vocabulary of control, byte and word tokens. Its output weights favour word
tokens (the rows of every other token are zero), so greedy decoding
(temperature 0) prints words and never ends at once with end-of-text: a
`ollama run` of it always produces text. The same seed gives the same bytes.

`manifest` turns such a file into an Ollama model (config, model, template
and parameter blobs and the manifest that lists them), as ollama.com serves
one, for the test registry to serve.

    python3 tests/cli/ollama_model.py OUT.gguf     writes the file (docs/ollama.md)
"""

import hashlib
import json
import sys
from pathlib import Path

import gguf
import numpy as np

# llama.cpp's llama architecture, as small as it loads.
VOCAB_WORDS = (
    "the cat sat on a mat and then ran to see big red fox jump over lazy dog "
    "in green field under blue sky while small bird sang song of quiet morning"
).split()
EMBEDDING = 64
HEADS = 4
FEED_FORWARD = 128
LAYERS = 2
CONTEXT = 256

# Token ids fixed by the layout of the vocabulary below.
UNK, BOS, EOS = 0, 1, 2
FIRST_WORD = 3 + 256

# What Ollama's model layers are called (its manifest media types).
MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

# Greedy decoding of a few tokens in a small context: quick on a CPU, and
# always some words (see the module's doc).
PARAMETERS = {"temperature": 0, "num_predict": 8, "num_ctx": CONTEXT}
TEMPLATE = "{{ .Prompt }}"


def vocabulary():
    """(tokens, scores, types): <unk> <s> </s>, the 256 byte tokens, the words."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    tokens += ["\u2581" + w for w in VOCAB_WORDS]
    types += [gguf.TokenType.NORMAL] * len(VOCAB_WORDS)
    scores = [0.0] * FIRST_WORD + [-float(i) for i in range(len(VOCAB_WORDS))]
    return tokens, scores, types


def write_gguf(path, seed=1):
    """Writes the tiny model to `path`; returns `path`."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    vocab = len(tokens)
    head_dim = EMBEDDING // HEADS

    def weights(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("olreg-tiny")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBEDDING)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(UNK)
    writer.add_bos_token_id(BOS)
    writer.add_eos_token_id(EOS)

    # numpy shapes are (rows, columns): GGUF stores them reversed, so
    # (out, in) here is llama.cpp's {in, out}.
    ones = np.ones(EMBEDDING, dtype=np.float32)
    writer.add_tensor("token_embd.weight", weights(vocab, EMBEDDING))
    for i in range(LAYERS):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", ones)
        writer.add_tensor(f"{blk}.attn_q.weight", weights(EMBEDDING, EMBEDDING))
        writer.add_tensor(f"{blk}.attn_k.weight", weights(EMBEDDING, EMBEDDING))
        writer.add_tensor(f"{blk}.attn_v.weight", weights(EMBEDDING, EMBEDDING))
        writer.add_tensor(f"{blk}.attn_output.weight", weights(EMBEDDING, EMBEDDING))
        writer.add_tensor(f"{blk}.ffn_norm.weight", ones)
        writer.add_tensor(f"{blk}.ffn_gate.weight", weights(FEED_FORWARD, EMBEDDING))
        writer.add_tensor(f"{blk}.ffn_up.weight", weights(FEED_FORWARD, EMBEDDING))
        writer.add_tensor(f"{blk}.ffn_down.weight", weights(EMBEDDING, FEED_FORWARD))
    writer.add_tensor("output_norm.weight", ones)
    output = weights(vocab, EMBEDDING)
    output[:FIRST_WORD] = 0  # control and byte tokens never win a greedy pick
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(gguf_bytes, parameters=None):
    """An Ollama model of the GGUF file's bytes, as ollama.com serves one:
    (manifest bytes, {digest: blob bytes}) for config, model, template and
    parameters (default PARAMETERS)."""
    layers = [
        (MEDIA_MODEL, gguf_bytes),
        (MEDIA_TEMPLATE, TEMPLATE.encode()),
        (MEDIA_PARAMS, json.dumps(parameters or PARAMETERS).encode()),
    ]
    config = json.dumps({
        "model_format": "gguf",
        "model_family": "llama",
        "model_families": ["llama"],
        "model_type": "tiny",
        "file_type": "F32",
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest_of(data) for _, data in layers]},
    }).encode()
    blobs = {digest_of(data): data for _, data in [*layers, (MEDIA_CONFIG, config)]}
    body = json.dumps({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": media, "digest": digest_of(data), "size": len(data)}
                   for media, data in layers],
    }).encode()
    return body, blobs


def modelfile(gguf_path):
    """A Modelfile for `ollama create` making the same model from the file."""
    lines = [f"FROM {gguf_path}", f'TEMPLATE """{TEMPLATE}"""']
    lines += [f"PARAMETER {key} {value}" for key, value in PARAMETERS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: ollama_model.py OUT.gguf")
    print(write_gguf(Path(sys.argv[1])))
