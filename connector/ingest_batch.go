package connector

import (
	"context"
	"slices"
	"time"

	"github.com/latchkey/latchkey/internal/batch"
	"github.com/latchkey/latchkey/mappings"
)

// ingestBatcher group-commits deliveries: deliveries that arrive while
// earlier ones are being written share one transaction, which takes every
// identity lock they need in one statement, checks their keys against the
// stored deliveries in one, reads each install and flow mapping once, and
// writes their deliveries and timeline rows in one statement each. Each
// caller returns once the transaction holding its delivery has committed,
// so an acknowledged delivery is a stored one.
//
// Nothing waits to fill a batch: a writer takes whatever has queued while
// the last batch was written, at most ingestBatchMax. Batches lock visit
// rows delivery by delivery, so two that reach one visit through different
// identities (an entry's event and its invite's) can deadlock; PostgreSQL
// ends one, and its deliveries are stored alone. A delivery that
// arrives alone, and any the batch cannot take (a key already stored, one
// another delivery of the batch shares, an event with no location), is
// stored by its own caller in a transaction of its own (ingestOne), as is
// every delivery of a batch that fails: a batch rolls back whole, so what
// one delivery does wrong is answered to it alone.
type ingestBatcher struct {
	svc    *Service
	runner *batch.Runner[*pendingIngest]
}

const (
	ingestBatchMax   = 64
	ingestQueueSize  = 4096
	ingestBatchLimit = 30 * time.Second
)

type pendingIngest struct {
	ctx  context.Context
	in   Inbound
	res  IngestResult
	err  error
	done chan struct{}
	// alone says the batch did not store the delivery: its caller stores
	// it by itself.
	alone bool
}

// newIngestBatcher writes at most writers batches at once: eight on
// PostgreSQL, where batches on distinct visits run in parallel (with
// fewer, the worker's syncs took the database from the webhooks under
// load; with more, batches shrank); one on SQLite, whose writers run one
// at a time anyway.
func newIngestBatcher(svc *Service, writers int) *ingestBatcher {
	return &ingestBatcher{svc: svc, runner: batch.NewRunner(writers, ingestBatchMax, ingestQueueSize, svc.ingestBatch)}
}

// do stores delivery in and returns once it is committed. It waits for the
// delivery's batch even when ctx ends first: the batch may still commit
// the delivery, whose syncs Ingest must then queue.
func (b *ingestBatcher) do(ctx context.Context, in Inbound) (IngestResult, error) {
	p := &pendingIngest{ctx: ctx, in: in, done: make(chan struct{})}
	if !b.runner.Submit(p) {
		// The queue is full: store it without waiting for a place.
		return b.svc.ingestOne(ctx, in)
	}
	<-p.done
	if p.alone {
		return b.svc.ingestOne(ctx, in)
	}
	return p.res, p.err
}

// ingestBatch stores batch in one transaction and answers each of its
// deliveries; those it cannot take are answered alone.
func (s *Service) ingestBatch(batch []*pendingIngest) {
	defer func() {
		for _, p := range batch {
			close(p.done)
		}
	}()
	take := s.batchable(batch)
	if len(take) == 0 {
		for _, p := range batch {
			p.alone = true
		}
		return
	}
	if len(take) == 1 {
		// Alone: stored here, so that deliveries arriving meanwhile
		// queue for the next batch.
		p := take[0]
		p.res, p.err = s.ingestOne(p.ctx, p.in)
		for _, q := range batch {
			q.alone = q != p
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(take[0].ctx), ingestBatchLimit)
	defer cancel()
	err := s.store.InTx(ctx, func(tx *Store) error {
		bt := tx.batched()
		var locks []string
		keys := make([]string, 0, 2*len(take))
		for _, p := range take {
			if p.in.Known && p.in.IgnoreReason == "" {
				locks = append(locks, identityLocks(p.in.Event)...)
			}
			keys = append(keys, p.in.DedupeKey)
			if p.in.LegacyKey != "" {
				keys = append(keys, p.in.LegacyKey)
			}
		}
		if err := bt.lockIdentities(ctx, locks...); err != nil {
			return err
		}
		// After the locks: a delivery of the same visit another
		// transaction stored is committed by now, and seen.
		stored, err := bt.storedDeliveryKeys(ctx, keys)
		if err != nil {
			return err
		}
		// A retried delivery is answered alone, from what is stored.
		take = slices.DeleteFunc(take, func(p *pendingIngest) bool {
			return slices.Contains(stored, p.in.DedupeKey) || p.in.LegacyKey != "" && slices.Contains(stored, p.in.LegacyKey)
		})
		bt.batch.keys = keys
		for _, p := range take {
			if p.res, err = s.applyInbound(ctx, bt, p.in); err != nil {
				return err
			}
		}
		return bt.flushBatch(ctx)
	})
	for _, p := range batch {
		p.alone = err != nil || !slices.Contains(take, p)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("ingest batch stored alone", "deliveries", len(take), "err", err)
	}
}

// batchable returns the deliveries of batch one transaction can take: not
// one whose key another shares (the first is taken), nor one without the
// location its event needs (it is refused alone).
func (s *Service) batchable(batch []*pendingIngest) []*pendingIngest {
	seen := make(map[string]bool, 2*len(batch))
	take := make([]*pendingIngest, 0, len(batch))
	for _, p := range batch {
		in := p.in
		if in.Known && in.Event.LocationID == "" || seen[in.DedupeKey] || in.LegacyKey != "" && seen[in.LegacyKey] {
			continue
		}
		seen[in.DedupeKey] = true
		if in.LegacyKey != "" {
			seen[in.LegacyKey] = true
		}
		take = append(take, p)
	}
	return take
}

// txBatch is what the deliveries of one batch share in its transaction:
// the locks it holds, the delivery keys it checked, the installs and
// mappings it read, and the rows it writes when it ends. A nil *txBatch
// (a Store outside a batch) holds nothing.
type txBatch struct {
	locks      []string
	keys       []string
	installs   map[string]batchInstall
	mappings   map[[3]string]*mappings.Mapping
	deliveries []*Delivery
	timeline   []TimelineEntry
}

type batchInstall struct {
	in    Install
	found bool
}

func (b *txBatch) holds(lock string) bool { return b != nil && slices.Contains(b.locks, lock) }

func (b *txBatch) hold(locks []string) {
	if b != nil {
		b.locks = append(b.locks, locks...)
	}
}

// checked says whether key was checked against the stored deliveries.
func (b *txBatch) checked(key string) bool { return b != nil && slices.Contains(b.keys, key) }

func (b *txBatch) install(id string) (Install, bool, bool) {
	if b == nil {
		return Install{}, false, false
	}
	r, ok := b.installs[id]
	return r.in, r.found, ok
}

func (b *txBatch) keepInstall(id string, in Install, found bool) {
	if b == nil {
		return
	}
	if b.installs == nil {
		b.installs = map[string]batchInstall{}
	}
	b.installs[id] = batchInstall{in, found}
}

// forgetInstall drops what was read of install id, whose configuration
// changes, and the mappings read from it.
func (b *txBatch) forgetInstall(id string) {
	if b == nil {
		return
	}
	delete(b.installs, id)
	for k := range b.mappings {
		if k[0] == id {
			delete(b.mappings, k)
		}
	}
}

func (b *txBatch) mapping(install, location, flow string) (*mappings.Mapping, bool) {
	if b == nil {
		return nil, false
	}
	m, ok := b.mappings[[3]string{install, location, flow}]
	return m, ok
}

func (b *txBatch) keepMapping(install, location, flow string, m *mappings.Mapping) {
	if b == nil {
		return
	}
	if b.mappings == nil {
		b.mappings = map[[3]string]*mappings.Mapping{}
	}
	b.mappings[[3]string{install, location, flow}] = m
}

// batched returns a Store on tx's transaction for deliveries that share it
// (one or a batch): reads of installs and mappings are kept, deliveries
// and timeline rows held for flushBatch.
func (s *Store) batched() *Store { return &Store{db: s.db, inTx: true, batch: &txBatch{}} }

// flushBatch writes the batch's deliveries and timeline rows.
func (s *Store) flushBatch(ctx context.Context) error {
	b := s.batch
	s.batch = nil
	if len(b.deliveries) > 0 {
		if err := s.insertDeliveries(ctx, b.deliveries...); err != nil {
			return err
		}
	}
	if len(b.timeline) > 0 {
		return s.addTimeline(ctx, b.timeline...)
	}
	return nil
}
