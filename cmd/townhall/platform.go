package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	gmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
)

// openDB opens the database named by --db.
func openDB(spec string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	switch {
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		db, err := gorm.Open(postgres.Open(spec), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		return db, nil
	case strings.HasPrefix(spec, "mysql://"):
		dsn, err := mysqlDSN(spec)
		if err != nil {
			return nil, err
		}
		db, err := gorm.Open(gmysql.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open mysql: %w", err)
		}
		return db, nil
	case strings.Contains(spec, "://"):
		return nil, fmt.Errorf("%w: --db %q: want a file path, a postgres:// or a mysql:// URL", errUsage, spec)
	}
	return townhall.OpenSQLite(spec)
}

// mysqlDSN turns mysql://user:pass@host:port/db?params into the driver's
// DSN, with parseTime=true and loc=UTC unless the URL sets them.
func mysqlDSN(spec string) (string, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: --db: malformed mysql URL", errUsage)
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if !strings.Contains(u.Host, ":") {
		cfg.Addr += ":3306"
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	q := u.Query()
	if v := q.Get("loc"); v != "" {
		loc, err := time.LoadLocation(v)
		if err != nil {
			return "", fmt.Errorf("%w: --db: loc %q", errUsage, v)
		}
		cfg.Loc = loc
		q.Del("loc")
	}
	if v := q.Get("parseTime"); v != "" {
		cfg.ParseTime = v == "true"
		q.Del("parseTime")
	}
	if len(q) > 0 {
		cfg.Params = map[string]string{}
		for k := range q {
			cfg.Params[k] = q.Get(k)
		}
	}
	return cfg.FormatDSN(), nil
}

// platform opens (and migrates) the platform of --db with --registry.
func (a *app) platform(ctx context.Context) (*townhall.Platform, error) {
	if a.p != nil {
		return a.p, nil
	}
	reg, err := a.loadRegistry()
	if err != nil {
		return nil, err
	}
	db, err := openDB(a.db)
	if err != nil {
		return nil, err
	}
	// One command, one process: no background sync loop.
	p, err := townhall.Open(ctx, db, townhall.WithRegistry(reg), townhall.WithSyncInterval(-1))
	if err != nil {
		return nil, err
	}
	a.p = p
	return p, nil
}

// loadRegistry reads --registry, or returns the default registry.
func (a *app) loadRegistry() (*access.Registry, error) {
	if a.registry == "" {
		return access.DefaultRegistry(), nil
	}
	return readRegistry(a.registry)
}

func readRegistry(path string) (*access.Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reg, err := access.LoadRegistry(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return reg, nil
}

// actor returns the subject named by --as, which must be an existing user.
func (a *app) actor(ctx context.Context, p *townhall.Platform) (access.Subject, error) {
	if a.as == "" {
		return access.Subject{}, fmt.Errorf("%w: this command changes access: name the acting user with --as USER", errUsage)
	}
	if _, err := p.Users.Get(ctx, a.as); err != nil {
		return access.Subject{}, fmt.Errorf("--as: %w", err)
	}
	return access.Subject{UserID: a.as}, nil
}

// mayUse refuses unless s may perform the platform action module.action
// somewhere: for the store-level writes that Admin has no method for
// (creating users and locations), the CLI asks the checker first.
func mayUse(ctx context.Context, p *townhall.Platform, s access.Subject, module, action string) error {
	ok, err := p.Checker.UserCanAccessModule(ctx, s, module, action)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s may not %s %s", access.ErrForbidden, s.UserID, action, module)
	}
	return nil
}
