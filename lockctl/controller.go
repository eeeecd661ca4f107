package lockctl

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/batch"
	"github.com/latchkey/latchkey/internal/mail"
)

// Options tunes a Controller. The zero value works.
type Options struct {
	// AdminAPIKey is the bootstrap key accepted as "KISI-LOGIN <key>"
	// besides the keys created through POST /logins. Empty: only those.
	AdminAPIKey string
	// Now is the clock for validity windows, events and rate limits
	// (default time.Now).
	Now func() time.Time
	// SimUnlockDuration is how long an unlock keeps a door open (default 5 s).
	SimUnlockDuration time.Duration
	// LinkRate limits unlocks per valid credential: a group link, a login
	// or the bootstrap key (default 1/s, burst 5).
	LinkRate Rate
	// IPRate limits unlock attempts without a valid credential per client
	// address (IPv6: per /64) (default 5/s, burst 20).
	IPRate Rate
	// LoginFailRate limits wrong KISI-LOGIN keys per client address (IPv6:
	// per /64) (default one per 5 s, burst 10). While an address is over
	// it, no key from there is checked: the answer is 429.
	LoginFailRate Rate
	// RefusalSamples is how many refused unlock attempts per reason and
	// minute are stored one by one (default 10); the rest are counted and
	// stored as one summary event per reason and minute.
	RefusalSamples int
	// EventRetention is how long events are kept (default 90 days); Sweep
	// deletes older ones.
	EventRetention time.Duration
	// PublicURL is the absolute base URL under which this controller's
	// routes are reachable (e.g. https://door.example.com/lockctl); the
	// emailed link is PublicURL + "/grouplinks/<secret>".
	PublicURL string
	// EventSetTTL is how long an event set can be read (default 24 h).
	EventSetTTL time.Duration
	// SecretKey derives the secrets of links created under an
	// Idempotency-Key, so a replayed create hands out the same ones without
	// storing them. Empty: creates with an Idempotency-Key are refused.
	SecretKey []byte
}

// Controller is the bundled lock controller: its store, driver, mailer and
// HTTP API. It is safe for concurrent use.
type Controller struct {
	log    *slog.Logger
	store  *store
	driver Driver
	mailer mail.Sender
	opts   Options
	now    func() time.Time

	linkLimits *limiters
	ipLimits   *limiters
	loginFails *limiters
	refusals   *refusals
	sweepBatch int
	access     *accessCache
	// accessReads reads the access generation, and the links named, once
	// for the decisions that arrive together (see view).
	accessReads *batch.Reader[string, accessRead]
	audit       *auditWriter
}

// New returns a Controller over db (already migrated with Migrate). driver
// moves the locks; nil means a SimDriver. mailer may be nil: then links with
// an email are not mailed. New registers the Controller as the driver's
// watcher, so driver-reported lock changes become events. Call Close when
// done, so that queued audit events are written.
func New(log *slog.Logger, db *gorm.DB, driver Driver, mailer mail.Sender, opts Options) *Controller {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SimUnlockDuration <= 0 {
		opts.SimUnlockDuration = 5 * time.Second
	}
	if opts.EventSetTTL <= 0 {
		opts.EventSetTTL = 24 * time.Hour
	}
	if opts.RefusalSamples <= 0 {
		opts.RefusalSamples = defaultRefusalSamples
	}
	if opts.EventRetention <= 0 {
		opts.EventRetention = defaultEventRetention
	}
	opts.LinkRate = opts.LinkRate.withDefault(Rate{PerSecond: 1, Burst: 5})
	opts.IPRate = opts.IPRate.withDefault(Rate{PerSecond: 5, Burst: 20})
	opts.LoginFailRate = opts.LoginFailRate.withDefault(defaultLoginFailRate)
	if driver == nil {
		driver = NewSimDriver(opts.Now)
	}
	c := &Controller{
		log:        log.With("component", "lockctl"),
		store:      newStore(db, opts.Now),
		driver:     driver,
		mailer:     mailer,
		opts:       opts,
		now:        opts.Now,
		linkLimits: newLimiters(opts.LinkRate, opts.Now),
		ipLimits:   newLimiters(opts.IPRate, opts.Now),
		loginFails: newLimiters(opts.LoginFailRate, opts.Now),
		refusals:   newRefusals(opts.RefusalSamples),
		sweepBatch: defaultSweepBatch,
		access:     newAccessCache(),
	}
	c.audit = newAuditWriter(c.store, c.log)
	c.accessReads = batch.NewReader(accessReaders, accessReadMax, accessReadLimit, c.store.accessReads)
	driver.Watch(c.onStateChange)
	return c
}

// Close writes the audit events still queued (see auditWriter). Unlocks
// after Close are still recorded, each by its own request. It does not
// close the database or the driver.
func (c *Controller) Close() { c.audit.close() }

// Handler returns a standalone HTTP handler serving the Kisi API at "/",
// with its own Kisi-style error handler, panic recovery, request IDs and a
// 1 MiB body limit. The client IP is taken from X-Forwarded-For only when the
// request comes from a loopback or private address.
func (c *Controller) Handler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPFromXFFHeader()
	e.HTTPErrorHandler = func(err error, ec echo.Context) { c.writeError(ec, err) }
	e.Use(middleware.Recover(), middleware.RequestID(), middleware.BodyLimit("1M"))
	c.Register(e.Group(""))
	return e
}

// onStateChange records what the driver reports: the lock row follows it
// and every real change becomes an event.
func (c *Controller) onStateChange(sc StateChange) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before, after, err := c.store.updateLock(ctx, sc.LockID, func(l *Lock) error {
		if sc.Unlocked != nil {
			l.Unlocked = *sc.Unlocked
			l.UnlockedUntil = nil
			if *sc.Unlocked {
				l.UnlockedUntil = utcPtr(sc.Until)
			}
		}
		if sc.Online != nil {
			l.Online = *sc.Online
		}
		return nil
	})
	if err != nil {
		c.log.Warn("apply lock state change", "lock_id", sc.LockID, "err", err)
		return
	}
	var types []string
	if before.Unlocked != after.Unlocked {
		types = append(types, map[bool]string{true: EventLockUnlocked, false: EventLockLocked}[after.Unlocked])
	}
	if before.Online != after.Online {
		types = append(types, map[bool]string{true: EventLockOnline, false: EventLockOffline}[after.Online])
	}
	for _, t := range types {
		e := lockEvent(t, after)
		e.CreatedAt = sc.At // when the driver saw it; zero means now
		if err := c.store.addEvent(ctx, &e); err != nil {
			c.log.Error("record lock state event", "lock_id", sc.LockID, "type", t, "err", err)
		}
	}
}

// lockEvent is a successful event about lock l with no actor.
func lockEvent(typ string, l Lock) Event {
	return Event{Type: typ, ObjectType: objectLock, ObjectID: ptr(l.ID), ObjectName: l.Name,
		PlaceID: ptr(l.PlaceID), Success: true}
}
