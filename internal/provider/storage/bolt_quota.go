package storage

import (
	"context"
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// Usage counts the user's documents, blobs and incoming messages by
// walking them. (A quota check on every write wants counters kept in
// the same transactions instead: see quota.go.)
func (s *Bolt) Usage(ctx context.Context, login string) (Usage, error) {
	var u Usage
	err := s.view("reading usage", func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, login)
		if err != nil {
			return err
		}
		if err := ub.Bucket(bDocs).ForEach(func(k, v []byte) error {
			var d providerapi.Doc
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			u.Docs++
			u.DocBytes += int64(len(d.Ciphertext))
			return nil
		}); err != nil {
			return err
		}
		if err := ub.Bucket(bBlobs).ForEach(func(k, v []byte) error {
			u.Blobs++
			u.BlobBytes += int64(len(v))
			return nil
		}); err != nil {
			return err
		}
		in := ub.Bucket(bIn)
		if in == nil {
			return nil
		}
		return in.ForEach(func(k, v []byte) error {
			u.Incoming++
			u.IncomingBytes += int64(len(v)) - 8 // less the arrival time
			return nil
		})
	})
	return u, err
}
