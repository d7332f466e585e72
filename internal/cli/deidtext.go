package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"medguard/internal/deid/scrub"
)

// stdinReader is where `medguard deid text` reads its notes: Run has no
// standard-input parameter, so the deid dispatcher passes this (tests
// call deidText with their own reader).
var stdinReader io.Reader = os.Stdin

// maxNoteLine is the longest input line deid text accepts (a note of a
// few megabytes with its JSON quoting).
const maxNoteLine = 16 << 20

// deidNote is one line of deid text's input and output.
type deidNote struct {
	ID   json.RawMessage `json:"id"`
	Text *string         `json:"text"`
}

// deidText is `medguard deid text --jsonl [--lang zh|en|auto]
// [--surrogate]`: it reads lines {"id","text"} on stdin and writes lines
// {"id","text"} with the text scrubbed (identifiers replaced by typed
// placeholders, or by surrogates consistent within each note), in the
// same order. Blank lines are skipped. A line that is not such an object
// stops the run with an error that names the line number, never its
// content.
func deidText(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("deid text", stderr)
	jsonl := fs.Bool("jsonl", false, "read and write JSON lines {\"id\",\"text\"} (required; the only format)")
	langFlag := fs.String("lang", "auto", "language of the notes: zh, en or auto (per note)")
	surrogate := fs.Bool("surrogate", false, "replace identifiers by realistic surrogates, consistent within each note, instead of placeholders")
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard deid text --jsonl [--lang zh|en|auto] [--surrogate] < notes.jsonl > scrubbed.jsonl")
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("deid text: unexpected argument %q", fs.Arg(0))}
	}
	if !*jsonl {
		return usageError{errors.New("deid text: --jsonl is required")}
	}
	lang, ok := scrub.ParseLang(*langFlag)
	if !ok {
		return usageError{fmt.Errorf("deid text: --lang must be zh, en or auto, not %q", *langFlag)}
	}
	s, err := scrub.Default()
	if err != nil {
		return fmt.Errorf("deid text: loading the segmenter's dictionary: %w", err)
	}
	// Surrogates are drawn from a key of this run mixed with each note's
	// id, so that they are consistent within a note, differ between runs
	// and say nothing about the originals.
	var key [8]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("deid text: %w", err)
	}
	runKey := binary.BigEndian.Uint64(key[:])

	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64<<10), maxNoteLine)
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	line := 0
	for in.Scan() {
		line++
		if err := ctx.Err(); err != nil {
			return err
		}
		b := bytes.TrimSpace(in.Bytes())
		if len(b) == 0 {
			continue
		}
		var n deidNote
		if err := json.Unmarshal(b, &n); err != nil || n.Text == nil {
			out.Flush()
			return fmt.Errorf("deid text: line %d: want a JSON object with \"id\" and a string \"text\"", line)
		}
		if len(n.ID) == 0 {
			n.ID = json.RawMessage("null")
		}
		h := fnv.New64a()
		h.Write(n.ID)
		text, _ := s.Scrub(*n.Text, scrub.Options{Lang: lang, Surrogate: *surrogate, Seed: runKey ^ h.Sum64()})
		if err := enc.Encode(deidNote{ID: n.ID, Text: &text}); err != nil {
			return fmt.Errorf("deid text: writing: %w", err)
		}
	}
	if err := in.Err(); err != nil {
		out.Flush()
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("deid text: line %d: longer than %d bytes", line+1, maxNoteLine)
		}
		return fmt.Errorf("deid text: reading: %w", err)
	}
	return out.Flush()
}
