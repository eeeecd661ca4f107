package webhooks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/metrics"
)

// MaxBody is the largest webhook body accepted (1 MiB).
const MaxBody = 1 << 20

// Ingester stores a delivery and its visit change in one transaction, and
// queues the syncs the change needs.
type Ingester interface {
	Ingest(ctx context.Context, in connector.Inbound) (connector.IngestResult, error)
}

// Handler receives Envoy webhooks: it verifies the signature on the raw
// body before parsing anything, stores the delivery, enqueues the visit's
// sync and answers quickly. It is safe for concurrent use.
type Handler struct {
	log     *slog.Logger
	ing     Ingester
	secrets []string
	outcome *prometheus.CounterVec
	inst    Installer
	metrics *metrics.Metrics
}

// WithMetrics records each event's lag (receive time − event time) in m.
func (h *Handler) WithMetrics(m *metrics.Metrics) *Handler {
	h.metrics = m
	return h
}

// eventTime is when the reported event happened, zero when the payload
// does not say (invites).
func eventTime(ev connector.Event) time.Time {
	switch ev.Kind {
	case connector.EventSignIn:
		return ev.SignedInAt
	case connector.EventSignOut:
		return ev.SignedOutAt
	}
	return time.Time{}
}

// WithInstaller enables the Envoy setup routes and plugin_uninstalled, and
// has the ingester answer 412 to events of an install whose controller key
// was refused (Inbound.RefuseDisconnected).
func (h *Handler) WithInstaller(inst Installer) *Handler {
	h.inst = inst
	return h
}

// NewHandler returns a Handler that accepts signatures made with any of
// secrets. Metrics are registered on reg.
func NewHandler(log *slog.Logger, ing Ingester, secrets []string, reg prometheus.Registerer) *Handler {
	h := &Handler{log: log.With("component", "webhooks"), ing: ing, secrets: secrets,
		outcome: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_webhooks_total", Help: "Envoy webhook deliveries by outcome.",
		}, []string{"outcome"})}
	reg.MustRegister(h.outcome)
	return h
}

// Register mounts POST /envoy on g (cmd mounts g at /webhooks).
func (h *Handler) Register(g *echo.Group) {
	g.POST("/envoy", h.envoy)
}

type response struct {
	Message     string           `json:"message"`
	DebugInfo   any              `json:"debugInfo,omitempty"`
	Status      string           `json:"status"`
	VisitID     int64            `json:"visit_id,omitempty"`
	VisitStatus connector.Status `json:"visit_status,omitempty"`
	Reason      string           `json:"reason,omitempty"`
}

func (h *Handler) envoy(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.outcome.WithLabelValues("too_large").Inc()
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body is larger than 1MB")
		}
		return latchkey.Wrap(latchkey.Invalid, "could not read the body", err)
	}
	if len(body) > MaxBody {
		h.outcome.WithLabelValues("too_large").Inc()
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body is larger than 1MB")
	}
	if !Verify(body, c.Request().Header.Get("X-Envoy-Signature"), h.secrets) {
		h.outcome.WithLabelValues("bad_signature").Inc()
		h.log.Warn("webhook signature rejected", "remote_ip", c.RealIP(), "has_header", c.Request().Header.Get("X-Envoy-Signature") != "")
		return c.JSON(http.StatusUnauthorized, map[string]any{"message": "missing or invalid X-Envoy-Signature",
			"error": map[string]string{"code": latchkey.Unauthorized.String(), "message": "missing or invalid X-Envoy-Signature"}})
	}
	received := time.Now()
	d, err := Parse(body)
	if err != nil {
		h.outcome.WithLabelValues("malformed").Inc()
		return refuse(c, err)
	}
	h.metrics.WebhookLag(received, eventTime(d.Event))
	ctx := c.Request().Context()
	if h.inst != nil && d.Kind == "plugin_uninstalled" && d.Event.InstallID != "" {
		if err := h.inst.Uninstall(ctx, d.Event.InstallID); err != nil {
			h.outcome.WithLabelValues("unavailable").Inc()
			return h.fail(c, err)
		}
		h.outcome.WithLabelValues("uninstalled").Inc()
		return c.JSON(http.StatusOK, response{Message: "every access of this install was revoked and its controller key deleted", Status: "uninstalled"})
	}
	res, err := h.ing.Ingest(ctx, connector.Inbound{DedupeKey: d.DedupeKey, LegacyKey: d.LegacyKey, EventName: d.Kind, JobID: d.JobID,
		Known: d.Known, IgnoreReason: d.Ignore, RefuseDisconnected: h.inst != nil, Event: d.Event})
	if latchkey.KindOf(err) == latchkey.Invalid {
		h.outcome.WithLabelValues("malformed").Inc()
		return refuse(c, err)
	}
	if err != nil {
		h.outcome.WithLabelValues("unavailable").Inc()
		if latchkey.KindOf(err) == latchkey.Internal {
			err = latchkey.Wrap(latchkey.Unavailable, "could not store the event", err)
		}
		return err
	}
	// Envoy's job semantics: 200 done, 202 work continues in the queue,
	// 400 ignored (with the reason Envoy shows).
	if res.Disconnected {
		h.outcome.WithLabelValues("failed").Inc()
		return answer(c, http.StatusPreconditionFailed, "the controller refused this install's API key, or it was removed; connect it again in the integration's settings")
	}
	out := response{Status: "accepted", VisitID: res.VisitID, VisitStatus: res.Status, Reason: res.Reason}
	code := http.StatusOK
	switch {
	case res.Duplicate:
		out.Status, out.Message = "duplicate", "already received"
	case !d.Known || d.Ignore != "" || res.Ignored:
		out.Status, code = "ignored", http.StatusBadRequest
		out.Message = res.Reason
		if out.Message == "" {
			out.Message = "event " + d.Kind + " is not handled"
		}
	case res.Changed || len(res.Also) > 0:
		code = http.StatusAccepted
		out.Message = "access is being set up on the controller"
		out.DebugInfo = map[string]any{"visit_id": res.VisitID, "visit_status": res.Status}
	default:
		out.Message = "nothing changed: " + string(res.Status)
	}
	h.outcome.WithLabelValues(out.Status).Inc()
	return c.JSON(code, out)
}

// refuse answers a delivery latchkey will never accept with 400. Envoy
// reads a job's failure reason from "message" (its plugin job semantics),
// so the body carries it there as well as in the service's usual error
// shape; a 400 also stops Envoy's retries.
func refuse(c echo.Context, err error) error {
	if latchkey.KindOf(err) != latchkey.Invalid {
		return err
	}
	msg := latchkey.Message(err)
	return c.JSON(http.StatusBadRequest, map[string]any{
		"message": msg,
		"error":   map[string]string{"code": latchkey.Invalid.String(), "message": msg},
	})
}
