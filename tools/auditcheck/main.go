// Command auditcheck lets an outside auditor check a medguard audit log with
// public libraries only — golang.org/x/mod/sumdb/note for the signed
// checkpoint and github.com/transparency-dev/merkle for RFC 6962 hashing and
// proofs. It imports nothing of medguard's, so that it can be read, and
// trusted, on its own.
//
//	auditcheck -key KEY -checkpoint CP -entries ENTRIES.jsonl
//	    verifies CP with KEY, recomputes the tree root from the exported
//	    leaves (the "leaf" field, base64 of the bytes that were hashed) and
//	    compares it with CP's root.
//	auditcheck -key KEY -checkpoint CP -inclusion PROOF.json -index I -leaf LEAF.b64
//	    verifies the inclusion proof of one entry in CP's tree.
//	auditcheck -key KEY -checkpoint OLD -checkpoint2 NEW -consistency PROOF.json
//	    verifies that NEW's tree extends OLD's.
//
// Proof files are the JSON answers of /api/v1/audit/proof/…: {"hashes": […]}.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "auditcheck:", err)
		os.Exit(1)
	}
}

// checkpoint is a verified tlog checkpoint: origin, size and root.
type checkpoint struct {
	origin string
	size   uint64
	root   []byte
}

func readCheckpoint(path, vkey string) (*checkpoint, error) {
	msg, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("%s: signature does not verify: %w", path, err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		return nil, fmt.Errorf("%s: not a tlog checkpoint", path)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: size: %w", path, err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		return nil, fmt.Errorf("%s: root: %w", path, err)
	}
	return &checkpoint{origin: lines[0], size: size, root: root}, nil
}

func readProof(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p struct {
		Hashes [][]byte `json:"hashes"`
	}
	return p.Hashes, json.Unmarshal(b, &p)
}

func run() error {
	key := flag.String("key", "", "note verifier key (name+hash+base64key), or @FILE")
	cpPath := flag.String("checkpoint", "", "signed checkpoint note")
	cp2Path := flag.String("checkpoint2", "", "a later signed checkpoint (for -consistency)")
	entries := flag.String("entries", "", "exported entries, JSON lines with \"index\" and \"leaf\"")
	inclusion := flag.String("inclusion", "", "inclusion proof JSON")
	consistency := flag.String("consistency", "", "consistency proof JSON")
	index := flag.Uint64("index", 0, "the entry's index (for -inclusion)")
	leafPath := flag.String("leaf", "", "the entry's leaf, base64 (for -inclusion)")
	flag.Parse()
	vkey := *key
	if strings.HasPrefix(vkey, "@") {
		b, err := os.ReadFile(vkey[1:])
		if err != nil {
			return err
		}
		vkey = string(b)
	}
	if vkey == "" || *cpPath == "" {
		return errors.New("-key and -checkpoint are required")
	}
	cp, err := readCheckpoint(*cpPath, vkey)
	if err != nil {
		return err
	}
	fmt.Printf("checkpoint %s: signature OK, size %d, root %s\n", cp.origin, cp.size, base64.StdEncoding.EncodeToString(cp.root))
	h := rfc6962.DefaultHasher
	switch {
	case *entries != "":
		f, err := os.Open(*entries)
		if err != nil {
			return err
		}
		defer f.Close()
		rf := compact.RangeFactory{Hash: h.HashChildren}
		r := rf.NewEmptyRange(0)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var e struct {
				Index uint64 `json:"index"`
				Leaf  []byte `json:"leaf"`
			}
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return err
			}
			if e.Index != r.End() {
				return fmt.Errorf("entry %d is missing (found %d)", r.End(), e.Index)
			}
			if err := r.Append(h.HashLeaf(e.Leaf), nil); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if r.End() != cp.size {
			return fmt.Errorf("%d entries exported, the checkpoint covers %d", r.End(), cp.size)
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			return err
		}
		if string(root) != string(cp.root) {
			return errors.New("the root recomputed from the entries does NOT match the checkpoint")
		}
		fmt.Printf("entries: the root recomputed from %d leaves matches the checkpoint\n", r.End())
	case *inclusion != "":
		p, err := readProof(*inclusion)
		if err != nil {
			return err
		}
		b64, err := os.ReadFile(*leafPath)
		if err != nil {
			return err
		}
		leaf, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
		if err != nil {
			return err
		}
		if err := proof.VerifyInclusion(h, *index, cp.size, h.HashLeaf(leaf), p, cp.root); err != nil {
			return fmt.Errorf("inclusion proof does NOT verify: %w", err)
		}
		fmt.Printf("inclusion: entry %d is in the tree of size %d\n", *index, cp.size)
	case *consistency != "":
		cp2, err := readCheckpoint(*cp2Path, vkey)
		if err != nil {
			return err
		}
		p, err := readProof(*consistency)
		if err != nil {
			return err
		}
		if err := proof.VerifyConsistency(h, cp.size, cp2.size, p, cp.root, cp2.root); err != nil {
			return fmt.Errorf("consistency proof does NOT verify: %w", err)
		}
		fmt.Printf("consistency: the tree of size %d extends the tree of size %d\n", cp2.size, cp.size)
	}
	return nil
}
