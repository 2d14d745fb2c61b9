package daemon

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// configDebounce is how long the config dir must be quiet before a change reloads it, so
// an editor's save (write, rename, chmod) causes one reload.
const configDebounce = 300 * time.Millisecond

// watchConfig reloads the configuration when a *.yaml/*.yml/*.json file in the config
// dir is written, created, renamed or removed.
func (d *Daemon) watchConfig() error {
	dir := d.opts.Settings.ConfigDir
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("routerd: watch config: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("routerd: watch config %s: %w", dir, err)
	}
	d.wg.Go(func() {
		defer w.Close()
		var timer *time.Timer
		fire := make(chan struct{}, 1)
		for {
			select {
			case <-d.ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				switch strings.ToLower(filepath.Ext(ev.Name)) {
				case ".yaml", ".yml", ".json":
				default:
					continue
				}
				if timer != nil {
					timer.Stop()
				}
				timer = time.AfterFunc(configDebounce, func() {
					select {
					case fire <- struct{}{}:
					default:
					}
				})
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.log.Warn("config watch", "err", err)
			case <-fire:
				d.log.Info("config dir changed; reloading", "dir", dir)
				_ = d.Reload(d.ctx) // a refused reload is logged by Reload
			}
		}
	})
	return nil
}
