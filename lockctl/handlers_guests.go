package lockctl

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// nanpPhone is Kisi's rule for a guest's phone number: a US, Canadian or
// Puerto Rican number in E.164 form, +1 and ten digits.
var nanpPhone = regexp.MustCompile(`^\+1[0-9]{10}$`)

type guestInput struct {
	Name        *string `json:"name"`
	Email       *string `json:"email"`
	PhoneNumber *string `json:"phone_number"`
}

// guest checks in and returns the guest it describes.
func (in guestInput) guest(fe fieldErrors) Guest {
	var g Guest
	if in.Name != nil {
		g.Name = strings.TrimSpace(*in.Name)
	}
	if g.Name == "" {
		fe.add("name", "can't be blank")
	}
	checkText(fe, "name", g.Name, maxPersonName)
	if in.Email != nil {
		g.Email = strings.TrimSpace(*in.Email)
		checkEmail(fe, "email", g.Email)
	}
	if in.PhoneNumber != nil {
		g.Phone = strings.TrimSpace(*in.PhoneNumber)
		if g.Phone != "" && !nanpPhone.MatchString(g.Phone) {
			fe.add("phone_number", "is invalid (only US, Canadian and Puerto Rican numbers, as +1XXXXXXXXXX)")
		}
	}
	return g
}

type guestResponse struct {
	ID           int64    `json:"id"`
	ResourceType string   `json:"resource_type"`
	Name         string   `json:"name"`
	Email        *string  `json:"email"`
	PhoneNumber  *string  `json:"phone_number"`
	CreatedAt    jsonTime `json:"created_at"`
	UpdatedAt    jsonTime `json:"updated_at"`
}

func newGuestResponse(g Guest) guestResponse {
	return guestResponse{ID: g.ID, ResourceType: "Guest", Name: g.Name, Email: nullable(g.Email),
		PhoneNumber: nullable(g.Phone), CreatedAt: jt(g.CreatedAt), UpdatedAt: jt(g.UpdatedAt)}
}

func (c *Controller) createGuest(ec echo.Context) error {
	var req struct {
		Guest guestInput `json:"guest"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	fe := fieldErrors{}
	g := req.Guest.guest(fe)
	if err := fe.err(); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err := c.store.tx(ctx, func(ts *store) error {
		if err := c.storeGuest(ec, ts, &g); err != nil {
			return err
		}
		return c.addPersonEvent(ec, ts, EventGuestCreate, objectGuest, g.ID, g.Name, nil)
	})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, newGuestResponse(g))
}

// storeGuest stores g through ts unless the bound on guests is reached.
func (c *Controller) storeGuest(ec echo.Context, ts *store, g *Guest) error {
	ctx := ec.Request().Context()
	n, err := count[Guest](ctx, ts, "guest")
	if err != nil {
		return err
	}
	if n >= maxGuests {
		return fieldErrors{"guest": {"limit of " + strconv.Itoa(maxGuests) + " guests reached; delete one first"}}
	}
	return ts.createGuest(ctx, g)
}

func (c *Controller) getGuest(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	g, err := c.store.guest(ec.Request().Context(), id)
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, newGuestResponse(g))
}

func (c *Controller) listGuests(ec echo.Context) error {
	pg, err := parsePage(ec, 10)
	if err != nil {
		return err
	}
	var f guestFilter
	if f.IDs, err = queryIDs(ec, "ids"); err != nil {
		return err
	}
	if f.Query, err = queryText(ec, "query"); err != nil {
		return err
	}
	guests, total, err := c.store.listGuests(ec.Request().Context(), f, pg)
	if err != nil {
		return err
	}
	out := make([]guestResponse, len(guests))
	for i, g := range guests {
		out[i] = newGuestResponse(g)
	}
	return writeList(ec, pg, total, out)
}

// deleteGuest removes the guest with their role assignments and access
// keys: their access ends when the answer is sent.
func (c *Controller) deleteGuest(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err = c.store.tx(ctx, func(ts *store) error {
		g, err := ts.deleteGuest(ctx, id)
		if err != nil {
			return err
		}
		return c.addPersonEvent(ec, ts, EventGuestDestroy, objectGuest, g.ID, g.Name, nil)
	})
	if err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}
