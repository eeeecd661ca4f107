package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/accounts"
)

type keysData struct {
	Keys   []APIKey
	NewKey string
	Name   string
	Error  string
	// Controller keys: minted on the controller (lockctl POST /logins).
	HasController   bool
	ControllerKeys  []ctrlLogin
	ControllerError string
}

// keysPage lists the API keys for /api/v1 (admins only).
func (u *UI) keysPage(c echo.Context) error {
	return u.renderKeys(c, http.StatusOK, keysData{})
}

func (u *UI) renderKeys(c echo.Context, status int, d keysData) error {
	ks, err := u.accts.APIKeys(c.Request().Context())
	if err != nil {
		return err
	}
	d.Keys = ks
	if u.ctrl != nil {
		// The page still works when the controller does not answer: it
		// says so next to the controller keys.
		d.HasController = true
		if d.ControllerKeys, err = u.ctrl.Logins(c.Request().Context()); err != nil {
			d.ControllerError = latchkey.Message(err)
		}
	}
	return u.render(c, status, "keys", "API keys", d)
}

// createKey makes a key and shows it once, on this answer only.
func (u *UI) createKey(c echo.Context) error {
	usr, _ := userOf(c)
	name := c.FormValue("name")
	key, k, err := u.accts.CreateAPIKey(c.Request().Context(), name, usr.Email)
	if latchkey.KindOf(err) == latchkey.Invalid {
		return u.renderKeys(c, http.StatusUnprocessableEntity, keysData{Name: name, Error: latchkey.Message(err)})
	}
	if err != nil {
		return err
	}
	u.log.Info("api key created", "api_key_id", k.ID, "user_id", usr.ID)
	return u.renderKeys(c, http.StatusOK, keysData{NewKey: key, Name: k.Name})
}

func (u *UI) revokeKey(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := u.accts.RevokeAPIKey(c.Request().Context(), id); err != nil {
		return err
	}
	usr, _ := userOf(c)
	u.log.Info("api key revoked", "api_key_id", id, "user_id", usr.ID)
	return redirect(c, "/admin/keys", "key-revoked")
}

// revokeControllerKey deletes a key minted on the controller; it stops
// opening doors at once.
func (u *UI) revokeControllerKey(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if u.ctrl == nil {
		return latchkey.Errorf(latchkey.NotFound, "no controller is configured")
	}
	if err := u.ctrl.DeleteLogin(c.Request().Context(), id); err != nil {
		return err
	}
	usr, _ := userOf(c)
	u.log.Info("controller key revoked", "login_id", id, "user_id", usr.ID)
	return redirect(c, "/admin/keys", "key-revoked")
}

type usersData struct {
	Users     []User
	Email     string
	Role      string
	Error     string
	MinLength int
	Me        int64
}

// usersPage lists the front-desk users (admins only).
func (u *UI) usersPage(c echo.Context) error {
	return u.renderUsers(c, http.StatusOK, usersData{Role: string(RoleFrontDesk)})
}

func (u *UI) renderUsers(c echo.Context, status int, d usersData) error {
	us, err := u.accts.Users(c.Request().Context())
	if err != nil {
		return err
	}
	d.Users, d.MinLength = us, MinPasswordLength
	if me, ok := userOf(c); ok {
		d.Me = me.ID
	}
	return u.render(c, status, "users", "Users", d)
}

func (u *UI) createUser(c echo.Context) error {
	d := usersData{Email: c.FormValue("email"), Role: c.FormValue("role")}
	role, err := accounts.ParseRole(d.Role)
	if err == nil {
		_, err = u.accts.CreateUser(c.Request().Context(), d.Email, c.FormValue("password"), role)
	}
	if k := latchkey.KindOf(err); err != nil && (k == latchkey.Invalid || k == latchkey.Conflict) {
		d.Error = latchkey.Message(err)
		return u.renderUsers(c, http.StatusUnprocessableEntity, d)
	}
	if err != nil {
		return err
	}
	return redirect(c, "/admin/users", "user-created")
}

func (u *UI) deleteUser(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if me, _ := userOf(c); me.ID == id {
		return latchkey.Errorf(latchkey.Conflict, "you cannot delete yourself")
	}
	if err := u.accts.DeleteUser(c.Request().Context(), id); err != nil {
		return err
	}
	return redirect(c, "/admin/users", "user-deleted")
}
