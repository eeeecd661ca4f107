package connector

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/mappings"
)

// Install is one Envoy install (Envoy's install_id): a tenant with its own
// controller account, places, mappings and customisation. The install ""
// (events of no install) and an install that never went through setup use
// the process's controller and the front desk's mappings.
type Install struct {
	ID            string
	ControllerURL string
	// HasKey says a controller key is stored (sealed); the key itself is
	// never part of an Install.
	HasKey       bool
	Organization string
	Config       InstallConfig
	// Configured says the visitor access step was completed: the install's
	// mappings come from Config, not from the front desk.
	Configured bool
	// KeyRefused says the controller refused the stored key.
	KeyRefused bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// InstallConfig is what the setup steps store, keyed as Envoy's config is.
type InstallConfig struct {
	Places                []string           `json:"places,omitempty"`
	VisitorAccess         map[string][]int64 `json:"visitor_access"`
	OnlyInvited           bool               `json:"only_invited"`
	AccessDurationMinutes int                `json:"access_duration_minutes"`
	AdvanceAccessMinutes  int                `json:"advance_access_minutes"`
	RevokeOnSignOut       bool               `json:"revoke_on_sign_out"`
	AppAccess             bool               `json:"app_access"`
	GuestIndicator        bool               `json:"guest_indicator"`
}

// Bounds of an install's configuration.
const (
	MaxInstallFlows      = 200
	MaxInstallFlowGroups = 50
	MaxInstallPlaces     = 200
	// GuestIndicatorText is appended in brackets to the visitor's name on
	// the controller when guest_indicator is on.
	GuestIndicatorText = "Envoy Guest"
)

// Equal reports whether c and o configure the same access.
func (c InstallConfig) Equal(o InstallConfig) bool {
	if c.OnlyInvited != o.OnlyInvited || c.AccessDurationMinutes != o.AccessDurationMinutes ||
		c.AdvanceAccessMinutes != o.AdvanceAccessMinutes || c.RevokeOnSignOut != o.RevokeOnSignOut ||
		c.AppAccess != o.AppAccess || c.GuestIndicator != o.GuestIndicator || len(c.VisitorAccess) != len(o.VisitorAccess) ||
		!slices.Equal(c.Places, o.Places) {
		return false
	}
	for f, gs := range c.VisitorAccess {
		og, ok := o.VisitorAccess[f]
		if !ok || !slices.Equal(gs, og) {
			return false
		}
	}
	return true
}

// Validate checks c's own values (not whether its groups exist).
func (c InstallConfig) Validate() error {
	switch {
	case len(c.VisitorAccess) > MaxInstallFlows:
		return latchkey.Errorf(latchkey.Invalid, "visitor_access maps more than %d flows", MaxInstallFlows)
	case len(c.Places) > MaxInstallPlaces:
		return latchkey.Errorf(latchkey.Invalid, "places lists more than %d places", MaxInstallPlaces)
	case c.AccessDurationMinutes < 1 || c.AccessDurationMinutes > mappings.MaxDurationMinutes:
		return latchkey.Errorf(latchkey.Invalid, "access_duration_minutes must be between 1 and %d", mappings.MaxDurationMinutes)
	case c.AdvanceAccessMinutes < 0 || c.AdvanceAccessMinutes > mappings.MaxAdvanceMinutes:
		return latchkey.Errorf(latchkey.Invalid, "advance_access_minutes must be between 0 and %d", mappings.MaxAdvanceMinutes)
	}
	for f, gs := range c.VisitorAccess {
		if f == "" || len(f) > 64 {
			return latchkey.Errorf(latchkey.Invalid, "visitor_access: %q is not a flow id", f)
		}
		if len(gs) == 0 || len(gs) > MaxInstallFlowGroups {
			return latchkey.Errorf(latchkey.Invalid, "visitor_access: flow %s needs between 1 and %d groups", f, MaxInstallFlowGroups)
		}
	}
	return nil
}

// mapping returns the install's mapping for flow at location, nil when the
// flow is not mapped.
func (c InstallConfig) mapping(location, flow string) *mappings.Mapping {
	gs, ok := c.VisitorAccess[flow]
	if !ok {
		return nil
	}
	m := &mappings.Mapping{LocationID: location, FlowID: flow, GroupIDs: slices.Clone(gs),
		DurationMinutes: c.AccessDurationMinutes, AdvanceMinutes: c.AdvanceAccessMinutes,
		OnlyInvited: c.OnlyInvited, RevokeOnSignOut: c.RevokeOnSignOut, AppAccess: c.AppAccess,
		Delivery: mappings.DeliveryLatchkey, Credential: mappings.CredentialLink}
	if c.GuestIndicator {
		m.GuestIndicator = GuestIndicatorText
	}
	return m
}

// Mappings returns the install's mappings, one per flow, for the front desk.
func (i Install) Mappings() []mappings.Mapping {
	flows := make([]string, 0, len(i.Config.VisitorAccess))
	for f := range i.Config.VisitorAccess {
		flows = append(flows, f)
	}
	sort.Strings(flows)
	out := make([]mappings.Mapping, 0, len(flows))
	for _, f := range flows {
		out = append(out, *i.Config.mapping("", f))
	}
	return out
}

// Dialer opens a controller client for a controller URL and API key. The
// Kisi client implements it (connector/kisi); the process's own controller
// is what the install "" uses.
type Dialer interface {
	Dial(controllerURL, apiKey string) (AccessControl, error)
	// DefaultURL is the process's controller URL, the default of an
	// install that names none.
	DefaultURL() string
}

// Controllers resolves the controller of an install: the one seam through
// which every controller call of the Service goes.
type Controllers interface {
	For(ctx context.Context, installID string) (AccessControl, error)
}

// processOnly resolves every install to the process's controller.
type processOnly struct{ ac AccessControl }

func (p processOnly) For(context.Context, string) (AccessControl, error) { return p.ac, nil }

// installControllers resolves an install with a stored key to a client on
// its own controller account, and any other install to the process's.
type installControllers struct {
	store  *Store
	open   func(sealed []byte, id string) ([]byte, error)
	dialer Dialer
	def    AccessControl
	mu     sync.Mutex
	cache  map[string]cachedController
	// unlocks holds each install's resolution for unlocks, for
	// unlockResolveTTL (see ForUnlock).
	unlocks map[string]cachedController
}

// unlockResolveTTL is how long an unlock reuses its install's resolved
// controller.
const unlockResolveTTL = 2 * time.Second

// ForUnlock is For for a guest's unlock, reusing the install's resolution
// for up to unlockResolveTTL (at is when it was made) instead of reading
// the install on every unlock. It only chooses which controller to ask:
// the controller still checks the link at that instant, and the visit's
// status is read on every unlock, so no door opens that either would
// refuse; a link secret opens doors only on the controller that made it.
func (c *installControllers) ForUnlock(ctx context.Context, id string) (AccessControl, error) {
	now := time.Now()
	c.mu.Lock()
	cc, ok := c.unlocks[id]
	c.mu.Unlock()
	if ok && now.Sub(cc.at) >= 0 && now.Sub(cc.at) < unlockResolveTTL {
		return cc.ac, nil
	}
	ac, err := c.For(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unlocks == nil || len(c.unlocks) > 1000 {
		c.unlocks = map[string]cachedController{}
	}
	c.unlocks[id] = cachedController{at: now, ac: ac}
	return ac, nil
}

type cachedController struct {
	at time.Time
	ac AccessControl
}

// ErrInstallDisconnected marks an install whose controller key was refused
// or removed: it gets no access until it is connected again.
var ErrInstallDisconnected error = &SetupRefusal{Msg: "this install's controller key was refused or removed; connect it again in Envoy"}

func (c *installControllers) For(ctx context.Context, id string) (AccessControl, error) {
	r, found, err := c.store.installRow(ctx, id)
	if err != nil {
		return nil, err
	}
	if !found {
		return c.def, nil
	}
	if len(r.SealedKey) == 0 || c.dialer == nil {
		return nil, ErrInstallDisconnected
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.cache[id]; ok && cc.at.Equal(r.UpdatedAt) {
		return cc.ac, nil
	}
	key, err := c.open(r.SealedKey, id)
	if err != nil {
		return nil, fmt.Errorf("open the controller key of install %s: %w", id, err)
	}
	ac, err := c.dialer.Dial(r.ControllerURL, string(key))
	if err != nil {
		return nil, fmt.Errorf("controller of install %s: %w", id, err)
	}
	if len(c.cache) > 1000 {
		clear(c.cache)
	}
	c.cache[id] = cachedController{at: r.UpdatedAt, ac: ac}
	return ac, nil
}

func (c *installControllers) forget(id string) {
	c.mu.Lock()
	delete(c.cache, id)
	delete(c.unlocks, id)
	c.mu.Unlock()
}

func installAD(id string) []byte { return []byte("install_key:" + id) }

type controllerKey struct{}

// withController returns ctx carrying ac, the controller the calls made
// under ctx go to.
func withController(ctx context.Context, ac AccessControl) context.Context {
	return context.WithValue(ctx, controllerKey{}, ac)
}

// ctl returns the controller resolved for the work under ctx; work for
// which none was resolved gets a controller that refuses everything (fail
// closed), never another install's.
func (s *Service) ctl(ctx context.Context) AccessControl {
	if ac, ok := ctx.Value(controllerKey{}).(AccessControl); ok {
		return ac
	}
	return unresolved{}
}

// bindController resolves install id's controller and returns ctx bound to
// it.
// bindUnlockController is bindController for a guest's unlock (see
// installControllers.ForUnlock).
func (s *Service) bindUnlockController(ctx context.Context, installID string) (context.Context, error) {
	ic, ok := s.controllers.(*installControllers)
	if !ok {
		return s.bindController(ctx, installID)
	}
	ac, err := ic.ForUnlock(ctx, installID)
	if err != nil {
		return ctx, err
	}
	return withController(ctx, ac), nil
}

func (s *Service) bindController(ctx context.Context, installID string) (context.Context, error) {
	ac, err := s.controllers.For(ctx, installID)
	if err != nil {
		return ctx, err
	}
	return withController(ctx, ac), nil
}

// ConnectInstall checks apiKey against the controller at controllerURL (the
// process's controller when empty) and, when it is accepted, stores it
// sealed as install id's controller account. It returns the install
// without the key. A refused key is a *SetupRefusal with a plain
// message.
func (s *Service) ConnectInstall(ctx context.Context, id, controllerURL, apiKey string) (Install, error) {
	if id == "" || len(id) > 64 {
		return Install{}, latchkey.Errorf(latchkey.Invalid, "meta.install_id is required")
	}
	if s.dialer == nil {
		return Install{}, refusedf("this latchkey cannot connect installs to controllers")
	}
	apiKey = strings.TrimSpace(apiKey)
	if apiKey == "" || len(apiKey) > 512 {
		return Install{}, latchkey.Errorf(latchkey.Invalid, "api_key is required")
	}
	if controllerURL == "" {
		controllerURL = s.dialer.DefaultURL()
	}
	u, err := url.Parse(controllerURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(controllerURL) > 512 {
		return Install{}, latchkey.Errorf(latchkey.Invalid, "controller_url must be an http or https URL")
	}
	ac, err := s.dialer.Dial(controllerURL, apiKey)
	if err != nil {
		return Install{}, latchkey.Errorf(latchkey.Invalid, "controller_url: %s", err.Error())
	}
	if _, err := ac.ListGroups(ctx); err != nil {
		switch latchkey.KindOf(err) {
		case latchkey.Unauthorized, latchkey.Forbidden, latchkey.Invalid, latchkey.NotFound:
			return Install{}, refusedf("the controller refused this API key")
		}
		return Install{}, latchkey.Wrap(latchkey.Unavailable, "the controller could not be reached; try again", err)
	}
	org := u.Host
	if err := s.store.saveInstallKey(ctx, id, controllerURL, s.box.Seal([]byte(apiKey), installAD(id)), org); err != nil {
		return Install{}, err
	}
	if ic, ok := s.controllers.(*installControllers); ok {
		ic.forget(id)
	}
	s.forgetDoors(id)
	in, _, err := s.store.Install(ctx, id)
	return in, err
}

// Option is one choice of a setup step's select field.
type Option struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// OptionsPage bounds one page of setup options.
const OptionsPage = 100

// InstallPlaces lists the places of install id's controller whose label
// contains search, one page (from 1) at a time.
func (s *Service) InstallPlaces(ctx context.Context, id, search string, page int) ([]Option, error) {
	groups, err := s.installGroups(ctx, id)
	if err != nil {
		return nil, err
	}
	names := s.placeNames(ctx, id)
	seen := map[int64]bool{}
	var out []Option
	for _, g := range groups {
		if g.PlaceID == 0 || seen[g.PlaceID] {
			continue
		}
		seen[g.PlaceID] = true
		label := names[g.PlaceID]
		if label == "" {
			label = "Place " + strconv.FormatInt(g.PlaceID, 10)
		}
		out = append(out, Option{Label: label, Value: strconv.FormatInt(g.PlaceID, 10)})
	}
	return pageOf(filterOptions(out, search), page), nil
}

// placeNames returns the names of install id's controller places, by id;
// empty when the controller cannot list them (the labels then say "Place"
// and the id).
func (s *Service) placeNames(ctx context.Context, id string) map[int64]string {
	names := map[int64]string{}
	ac, err := s.controllers.For(ctx, id)
	if err != nil {
		return names
	}
	pl, ok := ac.(PlaceLister)
	if !ok {
		return names
	}
	places, err := pl.ListPlaces(ctx)
	if err != nil {
		s.log.Warn("list the controller's places; labelling them by id", "install_id", id, "err", err)
		return names
	}
	for _, p := range places {
		names[p.ID] = p.Name
	}
	return names
}

// InstallGroupOptions lists the groups of install id's controller in places
// (all when empty) whose name contains search.
func (s *Service) InstallGroupOptions(ctx context.Context, id string, places []string, search string, page int) ([]Option, error) {
	groups, err := s.installGroups(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []Option
	for _, g := range groups {
		if len(places) > 0 && !slices.Contains(places, strconv.FormatInt(g.PlaceID, 10)) {
			continue
		}
		out = append(out, Option{Label: g.Name, Value: strconv.FormatInt(g.ID, 10)})
	}
	return pageOf(filterOptions(out, search), page), nil
}

func (s *Service) installGroups(ctx context.Context, id string) ([]Group, error) {
	in, found, err := s.store.Install(ctx, id)
	if err != nil {
		return nil, err
	}
	if !found || !in.HasKey {
		return nil, refusedf("connect a controller API key first")
	}
	ac, err := s.controllers.For(ctx, id)
	if err != nil {
		return nil, err
	}
	groups, err := ac.ListGroups(ctx)
	if err != nil {
		return nil, s.controllerFault(ctx, id, err)
	}
	sort.Slice(groups, func(a, b int) bool { return groups[a].ID < groups[b].ID })
	return groups, nil
}

// controllerFault turns a controller error of install id into a refused
// key (recorded, a *SetupRefusal) or a transient fault.
func (s *Service) controllerFault(ctx context.Context, id string, err error) error {
	switch latchkey.KindOf(err) {
	case latchkey.Unauthorized, latchkey.Forbidden:
		if merr := s.store.markKeyRefused(ctx, id); merr != nil {
			s.log.Warn("record a refused install key", "install_id", id, "err", merr)
		}
		return refusedf("the controller refused this install's API key")
	}
	return latchkey.Wrap(latchkey.Unavailable, "the controller could not be reached; try again", err)
}

func filterOptions(opts []Option, search string) []Option {
	search = strings.ToLower(strings.TrimSpace(search))
	if search == "" {
		return opts
	}
	out := opts[:0:0]
	for _, o := range opts {
		if strings.Contains(strings.ToLower(o.Label), search) {
			out = append(out, o)
		}
	}
	return out
}

func pageOf(opts []Option, page int) []Option {
	if page < 1 {
		page = 1
	}
	start := (page - 1) * OptionsPage
	if start >= len(opts) {
		return []Option{}
	}
	return opts[start:min(start+OptionsPage, len(opts))]
}

// ConfigureInstall validates c against install id's controller (every group
// must exist there) and stores it as the install's mappings. A bad value
// or group is a *SetupRefusal naming it. The open visits of every
// flow whose mapping changed are re-decided.
func (s *Service) ConfigureInstall(ctx context.Context, id string, c InstallConfig) (InstallConfig, error) {
	if err := c.Validate(); err != nil {
		return InstallConfig{}, refusedf("%s", latchkey.Message(err))
	}
	groups, err := s.installGroups(ctx, id)
	if err != nil {
		return InstallConfig{}, err
	}
	known := map[int64]bool{}
	for _, g := range groups {
		known[g.ID] = true
	}
	for f, gs := range c.VisitorAccess {
		for _, g := range gs {
			if !known[g] {
				return InstallConfig{}, refusedf("visitor_access: group %d of flow %s is not a group of this controller", g, f)
			}
		}
	}
	in, _, err := s.store.Install(ctx, id)
	if err != nil {
		return InstallConfig{}, err
	}
	if err := s.store.saveInstallConfig(ctx, id, c); err != nil {
		return InstallConfig{}, err
	}
	s.installChanged(ctx, id, in.Config, c)
	return c, nil
}

// installChanged re-decides the open visits of install id after its
// configuration changed from before to after.
func (s *Service) installChanged(ctx context.Context, id string, before, after InstallConfig) {
	if before.Equal(after) {
		return
	}
	ids, err := s.store.openVisitsOf(ctx, id, 1000)
	if err != nil {
		s.log.Warn("visits of a reconfigured install", "install_id", id, "err", err)
		return
	}
	var refs []VisitRef
	for _, vid := range ids {
		v, err := s.change(ctx, vid, "the install's configuration changed in Envoy", func(*Visit, *mappings.Mapping) error { return nil })
		if err == nil {
			refs = append(refs, VisitRef{ID: v.ID, Version: v.Version})
		}
	}
	s.afterSync(ctx, refs...)
}

// adoptConfig takes the configuration Envoy sent with an event of install
// id when it differs from the stored one (Envoy is where the install is
// configured), and says what changed, for the visit's timeline; "" when
// nothing did. A configuration that fails validation is not taken.
func (s *Service) adoptConfig(ctx context.Context, tx *Store, id string, c *InstallConfig) (string, error) {
	if id == "" || c == nil {
		return "", nil
	}
	in, found, err := tx.Install(ctx, id)
	if err != nil || !found || !in.Configured || in.Config.Equal(*c) {
		return "", err
	}
	if err := c.Validate(); err != nil {
		return "Envoy sent a configuration latchkey cannot use (" + latchkey.Message(err) + "); keeping the stored one", nil
	}
	if err := tx.saveInstallConfig(ctx, id, *c); err != nil {
		return "", err
	}
	return fmt.Sprintf("the install's configuration changed in Envoy: %d mapped flows, %d minutes of access, %d minutes in advance, only invited %t",
		len(c.VisitorAccess), c.AccessDurationMinutes, c.AdvanceAccessMinutes, c.OnlyInvited), nil
}

// Uninstall revokes every access of install id on its controller and then
// deletes its sealed key. It is safe to repeat.
func (s *Service) Uninstall(ctx context.Context, id string) error {
	in, found, err := s.store.Install(ctx, id)
	if err != nil || !found {
		return err
	}
	if in.HasKey {
		for {
			ids, err := s.store.openVisitsOf(ctx, id, 500)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				break
			}
			for _, vid := range ids {
				if _, err := s.change(ctx, vid, "the integration was uninstalled in Envoy", func(v *Visit, _ *mappings.Mapping) error {
					v.ManuallyRevoked = true
					at := s.now().UTC().Truncate(time.Second)
					v.RevokedAt = &at
					return nil
				}); err != nil {
					return err
				}
				if err := s.syncWaiting(ctx, vid); err != nil {
					return fmt.Errorf("revoke visit %d of install %s: %w", vid, id, err)
				}
			}
		}
	}
	if err := s.store.forgetInstallKey(ctx, id); err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "could not forget the install's key", err)
	}
	if ic, ok := s.controllers.(*installControllers); ok {
		ic.forget(id)
	}
	s.forgetDoors(id)
	return nil
}

// syncWaiting syncs visit id now, waiting for a reconciler that holds it
// to let go: the install's key is forgotten next, so no queued sync could
// revoke its links later. A lease held by a dead worker runs out after
// SyncLease; past twice that the ErrBusy is returned and the caller's
// caller (Envoy) retries.
func (s *Service) syncWaiting(ctx context.Context, id int64) error {
	giveUp := time.NewTimer(2 * s.opts.SyncLease)
	defer giveUp.Stop()
	wait := 20 * time.Millisecond
	for {
		_, err := s.SyncVisit(ctx, id)
		if !errors.Is(err, ErrBusy) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-giveUp.C:
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// unresolved is the controller of work whose install was not resolved: it
// refuses every call.
type unresolved struct{}

var errUnresolved = latchkey.Errorf(latchkey.Internal, "no controller was resolved for this work")

func (unresolved) CreateLink(context.Context, LinkSpec) (Link, error) { return Link{}, errUnresolved }
func (unresolved) UpdateLink(context.Context, int64, LinkSpec) (Link, error) {
	return Link{}, errUnresolved
}
func (unresolved) DeleteLink(context.Context, int64) error              { return errUnresolved }
func (unresolved) ListLinks(context.Context, ...int64) ([]Link, error)  { return nil, errUnresolved }
func (unresolved) ListGroups(context.Context) ([]Group, error)          { return nil, errUnresolved }
func (unresolved) LinkLocks(context.Context, string) ([]Lock, error)    { return nil, errUnresolved }
func (unresolved) GroupDoors(context.Context) (map[int64][]Lock, error) { return nil, errUnresolved }
func (unresolved) Unlock(context.Context, string, int64) error          { return errUnresolved }

// SetupRefusal is a setup step or event latchkey refuses for a reason the
// Envoy user can act on (a refused key, an unknown group); Envoy shows Msg.
type SetupRefusal struct{ Msg string }

func (e *SetupRefusal) Error() string { return e.Msg }

func refusedf(format string, args ...any) error {
	return &SetupRefusal{Msg: fmt.Sprintf(format, args...)}
}
