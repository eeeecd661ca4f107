package lockctl

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

const (
	// maxLogins bounds the logins of one bootstrap key.
	maxLogins = 100
	// loginIdleExpiry is how long a login created without expire:false
	// works without being used (Kisi's newer docs: six months).
	loginIdleExpiry = 180 * 24 * time.Hour
	// loginTouchEvery is how often last_used_at is written at most.
	loginTouchEvery = time.Minute
)

type createLoginRequest struct {
	Login struct {
		Type        string `json:"type"`
		Name        string `json:"name"`
		DeviceBrand string `json:"device_brand"`
		DeviceModel string `json:"device_model"`
		OSName      string `json:"os_name"`
		Email       string `json:"email"`
		Expire      any    `json:"expire"`
	} `json:"login"`
}

type loginUser struct {
	ID     int64   `json:"id"`
	Email  *string `json:"email"`
	Name   string  `json:"name"`
	Expire string  `json:"expire"`
}

type loginCreatedResponse struct {
	User   loginUser `json:"user"`
	Secret string    `json:"secret"`
}

// loginResponse is one entry of GET /logins. It never carries the secret.
type loginResponse struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	CreatedAt  jsonTime  `json:"created_at"`
	LastUsedAt *jsonTime `json:"last_used_at"`
}

// mintHash is the form in which the bootstrap key a login was minted under
// is stored.
func mintHash(key string) string { return hashSecret("lockctl login minter\x00" + key) }

// mintedBy returns the MintedBy of logins that p creates: the bootstrap
// key's mark, inherited by logins minted with a login.
func (c *Controller) mintedBy(p *principal) string {
	if p.Login != nil {
		return p.Login.MintedBy
	}
	return mintHash(c.opts.AdminAPIKey)
}

// loginAlive reports whether l may still authenticate at now: minted under
// the configured bootstrap key, and not idle past its expiry.
func (c *Controller) loginAlive(l Login, now time.Time) bool {
	if c.opts.AdminAPIKey == "" {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(l.MintedBy), []byte(mintHash(c.opts.AdminAPIKey))) != 1 {
		return false
	}
	last := l.CreatedAt
	if l.LastUsedAt != nil && l.LastUsedAt.After(last) {
		last = *l.LastUsedAt
	}
	return !l.Expire || now.Sub(last) < loginIdleExpiry
}

// expireRequested reads Kisi's expire flag: only false (or "false") makes a
// login that never expires.
func expireRequested(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return !strings.EqualFold(strings.TrimSpace(x), "false")
	}
	return true
}

// createLogin creates an API key (Kisi's POST /logins), with an optional
// name (an extension). The secret is in the answer only; it is stored
// hashed. The login lives as long as the bootstrap key it was minted under
// and, unless expire is false, until it has gone unused for 180 days.
func (c *Controller) createLogin(ec echo.Context) error {
	var req createLoginRequest
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.Login
	if r.Type == "" {
		r.Type = "device"
	}
	fe := fieldErrors{}
	if r.Type != "device" {
		fe.add("type", "is not included in the list")
	}
	r.Name, r.Email = strings.TrimSpace(r.Name), strings.TrimSpace(r.Email)
	checkEmail(fe, "email", r.Email)
	for field, v := range map[string]string{"name": r.Name, "device_brand": r.DeviceBrand, "device_model": r.DeviceModel, "os_name": r.OSName} {
		checkText(fe, field, v, maxDevice)
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	var user *User
	if r.Email != "" {
		u, found, err := c.store.userByEmail(ctx, strings.ToLower(r.Email))
		if err != nil {
			return err
		}
		if !found {
			return fieldErrors{"email": {"must belong to a user"}}
		}
		user = &u
	}
	secret, err := newSecret()
	if err != nil {
		return err
	}
	p, _ := who(ec)
	l := Login{Name: r.Name, Email: r.Email, Type: r.Type, DeviceBrand: r.DeviceBrand, DeviceModel: r.DeviceModel,
		OSName: r.OSName, Expire: expireRequested(r.Expire), SecretHash: hashSecret(secret), MintedBy: c.mintedBy(p)}
	if user != nil {
		return c.createUserLogin(ec, l, *user, secret)
	}
	err = c.store.tx(ctx, func(ts *store) error {
		n, err := ts.countLogins(ctx, l.MintedBy)
		if err != nil {
			return err
		}
		if n >= maxLogins {
			return fieldErrors{"login": {"limit of " + strconv.Itoa(maxLogins) + " keys reached; revoke one first"}}
		}
		if err := ts.createLogin(ctx, &l); err != nil {
			return err
		}
		return c.addLoginEvent(ec, ts, EventLoginCreate, l)
	})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, loginCreatedResponse{
		User:   loginUser{ID: l.ID, Email: nullable(l.Email), Name: l.displayName(), Expire: strconv.FormatBool(l.Expire)},
		Secret: secret,
	})
}

// listLogins is GET /logins: the administrators' API keys that work with
// the configured bootstrap key, or with user_id that user's logins, oldest
// first, paged with limit/offset.
func (c *Controller) listLogins(ec echo.Context) error {
	pg, err := parsePage(ec, 50)
	if err != nil {
		return err
	}
	userID, err := queryInt(ec, "user_id")
	if err != nil {
		return err
	}
	logins, total, err := c.store.listLogins(ec.Request().Context(), mintHash(c.opts.AdminAPIKey), userID, pg)
	if err != nil {
		return err
	}
	out := make([]loginResponse, len(logins))
	for i, l := range logins {
		out[i] = loginResponse{ID: l.ID, Name: l.displayName(), Type: l.Type, CreatedAt: jt(l.CreatedAt), LastUsedAt: jtp(l.LastUsedAt)}
	}
	return writeList(ec, pg, total, out)
}

// deleteLogin is DELETE /logins/{id}: the key stops working at once.
func (c *Controller) deleteLogin(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err = c.store.tx(ctx, func(ts *store) error {
		l, err := ts.deleteLogin(ctx, id)
		if err != nil {
			return err
		}
		return c.addLoginEvent(ec, ts, EventLoginDestroy, l)
	})
	if err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}

// addLoginEvent stores, through ts (the change's transaction), the event of
// a change to login l by the requesting admin.
func (c *Controller) addLoginEvent(ec echo.Context, ts *store, typ string, l Login) error {
	e := c.requestEvent(ec, typ)
	e.ObjectType, e.ObjectID, e.ObjectName, e.Success = objectLogin, ptr(l.ID), l.displayName(), true
	return ts.addEvent(ec.Request().Context(), &e)
}

// userLoginResponse is Kisi's Login for a login made on a user's behalf.
type userLoginResponse struct {
	ID     int64     `json:"id"`
	Type   string    `json:"type"`
	Name   *string   `json:"name"`
	Expire bool      `json:"expire"`
	UserID int64     `json:"user_id"`
	User   loginUser `json:"user"`
	Email  string    `json:"email"`
	Secret string    `json:"secret"`
	// AuthenticationToken is Kisi's deprecated alias of Secret.
	AuthenticationToken string    `json:"authentication_token"`
	CreatedAt           jsonTime  `json:"created_at"`
	LastUsedAt          *jsonTime `json:"last_used_at"`
}

// createUserLogin stores l as a device login of user (POST /logins with
// login.email): its secret, as "KISI-LOGIN <secret>", unlocks what the user
// may unlock with app access, and nothing an administrator may do. A user
// keeps at most maxUserLogins; the least recently used goes first.
func (c *Controller) createUserLogin(ec echo.Context, l Login, user User, secret string) error {
	ctx := ec.Request().Context()
	l.UserID, l.Email = &user.ID, user.Email
	err := c.store.tx(ctx, func(ts *store) error {
		if err := c.addUserLogin(ec, ts, &l); err != nil {
			return err
		}
		return c.addLoginEvent(ec, ts, EventLoginCreate, l)
	})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, userLoginResponse{ID: l.ID, Type: l.Type, Name: nullable(l.Name), Expire: l.Expire,
		UserID: user.ID, User: loginUser{ID: user.ID, Email: nullable(user.Email), Name: user.Name,
			Expire: strconv.FormatBool(l.Expire)},
		Email: user.Email, Secret: secret, AuthenticationToken: secret, CreatedAt: jt(l.CreatedAt)})
}

// addUserLogin stores l (with UserID set) through ts, first removing the
// user's least recently used logins beyond maxUserLogins-1.
func (c *Controller) addUserLogin(ec echo.Context, ts *store, l *Login) error {
	ctx := ec.Request().Context()
	existing, err := ts.userLogins(ctx, *l.UserID)
	if err != nil {
		return err
	}
	for i := 0; i+maxUserLogins-1 < len(existing); i++ {
		if _, err := ts.deleteLogin(ctx, existing[i].ID); err != nil {
			return err
		}
		if err := c.addLoginEvent(ec, ts, EventLoginDestroy, existing[i]); err != nil {
			return err
		}
	}
	return ts.createLogin(ctx, l)
}
