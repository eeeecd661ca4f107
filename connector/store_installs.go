package connector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	latchkey "github.com/latchkey/latchkey"
)

// installRow is the stored form of an Install. SealedKey is the controller
// API key sealed with the service's secret box (bound to the install id);
// it is never returned by a view.
type installRow struct {
	ID            string `gorm:"primaryKey;size:64"`
	ControllerURL string `gorm:"size:512;not null"`
	SealedKey     []byte
	Organization  string        `gorm:"size:200;not null"`
	Config        InstallConfig `gorm:"serializer:json;type:text;not null"`
	Configured    bool          `gorm:"not null"`
	KeyRefused    bool          `gorm:"not null"`
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (installRow) TableName() string { return "envoy_installs" }

func (r installRow) toDomain() Install {
	return Install{ID: r.ID, ControllerURL: r.ControllerURL, HasKey: len(r.SealedKey) > 0,
		Organization: r.Organization, Config: r.Config, Configured: r.Configured, KeyRefused: r.KeyRefused,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func migrateInstalls(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).AutoMigrate(&installRow{})
}

// Install returns install id; found is false when it never went through
// setup.
func (s *Store) Install(ctx context.Context, id string) (Install, bool, error) {
	if in, found, ok := s.batch.install(id); ok {
		return in, found, nil
	}
	r, found, err := s.installRow(ctx, id)
	in := r.toDomain()
	if err == nil {
		s.batch.keepInstall(id, in, found)
	}
	return in, found, err
}

func (s *Store) installRow(ctx context.Context, id string) (installRow, bool, error) {
	if id == "" {
		return installRow{}, false, nil
	}
	var r installRow
	err := s.db.WithContext(ctx).Take(&r, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return installRow{}, false, nil
	}
	if err != nil {
		return installRow{}, false, latchkey.Wrap(latchkey.Unavailable, "could not read the install", err)
	}
	return r, true, nil
}

// Installs lists the installs that hold a controller key, at most limit.
func (s *Store) Installs(ctx context.Context, limit int) ([]Install, error) {
	var rs []installRow
	if err := s.db.WithContext(ctx).Where("sealed_key IS NOT NULL").Order("id").Limit(limit).Find(&rs).Error; err != nil {
		return nil, fmt.Errorf("list installs: %w", err)
	}
	out := make([]Install, len(rs))
	for i, r := range rs {
		out[i] = r.toDomain()
	}
	return out, nil
}

// saveInstallKey creates or updates install id's controller account.
func (s *Store) saveInstallKey(ctx context.Context, id, url string, sealed []byte, org string) error {
	r := installRow{ID: id, ControllerURL: url, SealedKey: sealed, Organization: org, Config: InstallConfig{}}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"controller_url", "sealed_key", "organization", "key_refused", "updated_at"}),
	}).Create(&r).Error
	if err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "could not store the install", err)
	}
	return nil
}

// saveInstallConfig stores install id's configuration (its mappings and
// customisation).
func (s *Store) saveInstallConfig(ctx context.Context, id string, c InstallConfig) error {
	s.batch.forgetInstall(id)
	err := s.db.WithContext(ctx).Model(&installRow{ID: id}).Select("config", "configured", "updated_at").
		Updates(installRow{Config: c, Configured: true, UpdatedAt: time.Now().UTC()}).Error
	if err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "could not store the install's configuration", err)
	}
	return nil
}

// markKeyRefused records that install id's controller refused its key.
func (s *Store) markKeyRefused(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Model(&installRow{}).Where("id = ?", id).Update("key_refused", true).Error
}

// forgetInstallKey deletes install id's sealed key; its configuration is
// kept so that its visits still decide to no access.
func (s *Store) forgetInstallKey(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Model(&installRow{}).Where("id = ?", id).
		Updates(map[string]any{"sealed_key": nil, "updated_at": time.Now().UTC()}).Error
}

// openVisitsOf lists the visits of install id that may hold access, at most
// limit.
func (s *Store) openVisitsOf(ctx context.Context, id string, limit int) ([]int64, error) {
	var ids []int64
	if err := openVisitsOfQuery(s.db.WithContext(ctx), id, limit).Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("visits of install: %w", err)
	}
	return ids, nil
}

// openVisitsOfQuery selects openVisitsOf's visits, through
// visits_of_install.
func openVisitsOfQuery(q *gorm.DB, id string, limit int) *gorm.DB {
	return q.Model(&Visit{}).Where("install_id = ?", id).Where(unrevokedSQL).Order("id").Limit(limit)
}

// installsOf returns the install of each visit in ids.
func (s *Store) installsOf(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	for start := 0; start < len(ids); start += 500 {
		var rows []struct {
			ID        int64
			InstallID string
		}
		end := min(start+500, len(ids))
		if err := s.db.WithContext(ctx).Model(&Visit{}).Select("id, install_id").Where("id IN ?", ids[start:end]).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("visit installs: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = r.InstallID
		}
	}
	return out, nil
}
