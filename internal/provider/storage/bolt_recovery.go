package storage

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// bRecovery is the bucket of recovery data: recovery/LOGIN -> Recovery
// (JSON). It is made at the first SetRecovery.
var bRecovery = []byte("recovery")

func (s *Bolt) SetRecovery(ctx context.Context, login string, c providerapi.Credentials, now time.Time) error {
	v, err := json.Marshal(&Recovery{
		SRPSalt: c.SRPSalt, SRPVerifier: c.SRPVerifier, KDF: c.KDF,
		WrappedSecret: c.WrappedSecret, Updated: now.UTC(),
	})
	if err != nil {
		return err
	}
	return s.update("setting recovery data", func(tx *bolt.Tx) error {
		if tx.Bucket(bUsers).Get([]byte(login)) == nil {
			return ErrNotFound
		}
		b, err := tx.CreateBucketIfNotExists(bRecovery)
		if err != nil {
			return err
		}
		return b.Put([]byte(login), v)
	})
}

func (s *Bolt) Recovery(ctx context.Context, login string) (*Recovery, error) {
	var r Recovery
	err := s.view("reading recovery data", func(tx *bolt.Tx) error {
		b := tx.Bucket(bRecovery)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(login))
		if v == nil || tx.Bucket(bUsers).Get([]byte(login)) == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Bolt) RecoveryFailed(ctx context.Context, login string, at time.Time) (uint64, error) {
	var n uint64
	err := s.update("counting a failed recovery", func(tx *bolt.Tx) error {
		b := tx.Bucket(bRecovery)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(login))
		if v == nil {
			return ErrNotFound
		}
		var r Recovery
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		r.Failures++
		r.LastFailure = at.UTC()
		n = r.Failures
		nv, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		return b.Put([]byte(login), nv)
	})
	return n, err
}

func (s *Bolt) DeleteRecovery(ctx context.Context, login string) error {
	return s.update("deleting recovery data", func(tx *bolt.Tx) error {
		if b := tx.Bucket(bRecovery); b != nil {
			return b.Delete([]byte(login))
		}
		return nil
	})
}
