package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/compact"

	"medguard/internal/storage"
)

// The tree's hashes are stored in tiles, as C2SP tlog-tiles lays them out:
// tile (level L, index N) holds the hashes of tree level 8L at indexes
// [256N, 256N+width). A node at a level between multiples of 8 is the root
// of a perfect subtree of its tile's bottom row, folded on demand — at most
// 255 hashes, never the log.
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
	hashSize   = 32
)

// tileKey names a tile.
type tileKey struct {
	level uint   // tile level: tree level tileHeight*level
	index uint64 // tile index
}

// tileOf returns the tile holding the bottom row under node id, and the
// positions [lo, hi) of that row within it.
func tileOf(id compact.NodeID) (tileKey, int, int) {
	l, h := id.Level/tileHeight, id.Level%tileHeight
	first := id.Index << h
	lo := int(first % tileWidth)
	return tileKey{level: l, index: first / tileWidth}, lo, lo + 1<<h
}

// splitHashes cuts concatenated hashes into one slice each.
func splitHashes(b []byte) [][]byte {
	hashes := make([][]byte, len(b)/hashSize)
	for i := range hashes {
		hashes[i] = b[i*hashSize : (i+1)*hashSize : (i+1)*hashSize]
	}
	return hashes
}

// fold hashes a perfect subtree from its bottom row.
func fold(row []byte) []byte {
	hashes := splitHashes(row)
	for len(hashes) > 1 {
		next := hashes[:len(hashes)/2]
		for i := range next {
			next[i] = hasher.HashChildren(hashes[2*i], hashes[2*i+1])
		}
		hashes = next
	}
	return hashes[0]
}

// readTiles reads the given tiles; missing ones are absent from the map. A
// tile is its row of audit_tiles followed by the parts (audit_tile_parts)
// that continue it without a gap — if the database has parts (see
// hasParts). Both tables are read in one statement, so from one snapshot:
// read apart, a tile could be made whole and its parts deleted between
// the two reads, and a proof or a verify running beside the appender
// would find the tile missing.
func readTiles(ctx context.Context, q querier, keys []tileKey, parts bool) (map[tileKey][]byte, error) {
	out := map[tileKey][]byte{}
	query := `SELECT level, idx, 0, 0, hashes FROM audit_tiles WHERE %[1]s`
	if parts {
		// The row first, then the parts in order.
		query += ` UNION ALL SELECT level, idx, 1, first, hashes FROM audit_tile_parts WHERE %[1]s ORDER BY 1, 2, 4, 3`
	}
	for lo := 0; lo < len(keys); lo += 200 {
		chunk := keys[lo:min(lo+200, len(keys))]
		var where strings.Builder
		args := make([]any, 0, 2*len(chunk))
		for i, k := range chunk {
			if i > 0 {
				where.WriteString(" OR ")
			}
			fmt.Fprintf(&where, "(level = $%d AND idx = $%d)", 2*i+1, 2*i+2)
			args = append(args, int64(k.level), int64(k.index))
		}
		rows, err := q.QueryContext(ctx, fmt.Sprintf(query, where.String()), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var level, index, part, first int64
			var hashes []byte
			if err := rows.Scan(&level, &index, &part, &first, &hashes); err != nil {
				rows.Close()
				return nil, err
			}
			k := tileKey{uint(level), uint64(index)}
			if t := out[k]; part == 0 {
				out[k] = hashes
			} else if int(first)*hashSize == len(t) && len(t)+len(hashes) <= tileWidth*hashSize {
				out[k] = append(t, hashes...)
			}
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, err
		}
		rows.Close()
	}
	return out, nil
}

// hasParts reports whether db stores tiles in parts: a database written
// before migration 0006 (read by verify or archive without being migrated)
// has whole-row tiles only. A log (Open) always migrated has them.
func hasParts(ctx context.Context, db *storage.DB) (bool, error) {
	return db.HasTable(ctx, "audit_tile_parts")
}

// readNodes returns the hashes of the given perfect nodes, in order, from
// the tiles.
func readNodes(ctx context.Context, q querier, ids []compact.NodeID, parts bool) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	tiles, err := readTiles(ctx, q, tilesHolding(ids), parts)
	if err != nil {
		return nil, err
	}
	return nodesIn(tiles, ids)
}

// tilesHolding lists, once each, the tiles that hold the nodes ids.
func tilesHolding(ids []compact.NodeID) []tileKey {
	seen := map[tileKey]bool{}
	var keys []tileKey
	for _, id := range ids {
		if k, _, _ := tileOf(id); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// nodesIn folds the hashes of the nodes ids from the tiles that hold them.
func nodesIn(tiles map[tileKey][]byte, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		k, lo, hi := tileOf(id)
		t := tiles[k]
		if len(t) < hi*hashSize || len(t)%hashSize != 0 {
			return nil, fmt.Errorf("audit: tree node level %d index %d is missing", id.Level, id.Index)
		}
		out[i] = fold(t[lo*hashSize : hi*hashSize])
	}
	return out, nil
}

// encodeBundle joins leaves as (uvarint length, bytes) pairs.
func encodeBundle(leaves [][]byte) []byte {
	n := 0
	for _, l := range leaves {
		n += binary.MaxVarintLen32 + len(l)
	}
	b := make([]byte, 0, n)
	for _, l := range leaves {
		b = binary.AppendUvarint(b, uint64(len(l)))
		b = append(b, l...)
	}
	return b
}

// errBundle says a bundle is not well formed.
var errBundle = errors.New("audit: a bundle of leaves is damaged")

// decodeBundle splits a bundle into count leaves.
func decodeBundle(b []byte, count int) ([][]byte, error) {
	out := make([][]byte, 0, count)
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return out, errBundle
		}
		out = append(out, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	if len(out) != count {
		return out, errBundle
	}
	return out, nil
}
