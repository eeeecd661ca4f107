package lockctl

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

type createLoginRequest struct {
	Login struct {
		Type        string `json:"type"`
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

// createLogin creates an API key (Kisi's POST /logins). The secret is in
// the answer only; it is stored hashed. lockctl's keys do not expire, so
// expire is always "false".
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
	r.Email = strings.TrimSpace(r.Email)
	checkEmail(fe, "email", r.Email)
	for field, v := range map[string]string{"device_brand": r.DeviceBrand, "device_model": r.DeviceModel, "os_name": r.OSName} {
		checkText(fe, field, v, maxDevice)
	}
	if err := fe.err(); err != nil {
		return err
	}
	secret, err := newSecret()
	if err != nil {
		return err
	}
	l := Login{Email: r.Email, Type: r.Type, DeviceBrand: r.DeviceBrand, DeviceModel: r.DeviceModel,
		OSName: r.OSName, SecretHash: hashSecret(secret)}
	ctx := ec.Request().Context()
	err = c.store.tx(ctx, func(ts *store) error {
		if err := ts.createLogin(ctx, &l); err != nil {
			return err
		}
		return c.addLoginEvent(ec, ts, EventLoginCreate, l)
	})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, loginCreatedResponse{
		User:   loginUser{ID: l.ID, Email: nullable(l.Email), Name: l.displayName(), Expire: "false"},
		Secret: secret,
	})
}

// addLoginEvent stores, through ts (the change's transaction), the event of
// a change to login l by the requesting admin.
func (c *Controller) addLoginEvent(ec echo.Context, ts *store, typ string, l Login) error {
	e := c.requestEvent(ec, typ)
	e.ObjectType, e.ObjectID, e.ObjectName, e.Success = objectLogin, ptr(l.ID), l.displayName(), true
	return ts.addEvent(ec.Request().Context(), &e)
}
