package migrate

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// ErrInvalidSettings: a setting out of range, or one that cannot change
// while the migration runs.
var ErrInvalidSettings = errors.New("invalid settings")

// Bounds on settings an operator gives. The upper ones only catch typing
// mistakes: a downtime target of an hour is no longer live migration.
const (
	MaxDowntimeTarget = time.Hour
	MaxMaxRounds      = 100_000
)

// Settings are the settings an operator chooses for one migration, when
// starting it (POST /v1/migrate, `migtrace migrate`) or while it runs
// (PATCH /v1/migrations/ID/settings, `migtrace migrate-set`). A nil field
// leaves that setting as it is: the server's flag at the start, the
// current value in flight. The JSON keys are the schema.Setting* names.
type Settings struct {
	// MaxBandwidth caps migration traffic in bytes per second; 0 lifts
	// the cap.
	MaxBandwidth *int64 `json:"max_bandwidth,omitempty"`
	// DowntimeTargetNs: pre-copy stops once what is still dirty could be
	// sent in this many nanoseconds at the measured bandwidth.
	DowntimeTargetNs *int64 `json:"downtime_target_ns,omitempty"`
	// MaxRounds bounds the pre-copy rounds.
	MaxRounds *int64 `json:"max_rounds,omitempty"`
	// AutoConverge throttles the guest when rounds stop converging.
	AutoConverge *bool `json:"auto_converge,omitempty"`
	// ClockSkewCorrection (destination) and SkipMemoryChecksum (source)
	// act once, so they can only be chosen at the start.
	ClockSkewCorrection *bool `json:"clock_skew_correction,omitempty"`
	SkipMemoryChecksum  *bool `json:"skip_memory_checksum,omitempty"`
}

// IsZero reports whether s sets nothing.
func (s Settings) IsZero() bool { return s == Settings{} }

// Validate refuses a setting out of range, naming it and its value.
func (s Settings) Validate() error {
	var errs []error
	if v := s.MaxBandwidth; v != nil && *v < 0 {
		errs = append(errs, fmt.Errorf("%s %d: want bytes per second, 0 or more (0: no cap)", schema.SettingMaxBandwidth, *v))
	}
	if v := s.DowntimeTargetNs; v != nil && (*v <= 0 || *v > int64(MaxDowntimeTarget)) {
		errs = append(errs, fmt.Errorf("%s %d: want nanoseconds above 0 and at most %d (%v)", schema.SettingDowntimeTarget, *v, int64(MaxDowntimeTarget), MaxDowntimeTarget))
	}
	if v := s.MaxRounds; v != nil && (*v < 1 || *v > MaxMaxRounds) {
		errs = append(errs, fmt.Errorf("%s %d: want 1 to %d", schema.SettingMaxRounds, *v, MaxMaxRounds))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSettings, err)
	}
	return nil
}

// ValidateInFlight is Validate for a change to a running migration: it
// also refuses the settings that act only at the start.
func (s Settings) ValidateInFlight() error {
	if err := s.Validate(); err != nil {
		return err
	}
	var fixed []string
	if s.ClockSkewCorrection != nil {
		fixed = append(fixed, schema.SettingClockSkewCorrection)
	}
	if s.SkipMemoryChecksum != nil {
		fixed = append(fixed, schema.SettingSkipMemoryChecksum)
	}
	if len(fixed) > 0 {
		return fmt.Errorf("%w: %s cannot change while the migration runs, only when it starts", ErrInvalidSettings, strings.Join(fixed, " and "))
	}
	if s.IsZero() {
		return fmt.Errorf("%w: no setting given; want one or more of %s, %s, %s, %s", ErrInvalidSettings,
			schema.SettingMaxBandwidth, schema.SettingDowntimeTarget, schema.SettingMaxRounds, schema.SettingAutoConverge)
	}
	return nil
}

// Apply returns to with the settings s gives.
func (s Settings) Apply(to model.Settings) model.Settings {
	if s.MaxBandwidth != nil {
		to.MaxBandwidth = *s.MaxBandwidth
	}
	if s.DowntimeTargetNs != nil {
		to.DowntimeTargetNs = *s.DowntimeTargetNs
	}
	if s.MaxRounds != nil {
		to.MaxRounds = *s.MaxRounds
	}
	if s.AutoConverge != nil {
		to.AutoConverge = *s.AutoConverge
	}
	if s.ClockSkewCorrection != nil {
		to.ClockSkewCorrection = *s.ClockSkewCorrection
	}
	if s.SkipMemoryChecksum != nil {
		to.SkipMemoryChecksum = *s.SkipMemoryChecksum
	}
	return to
}

// ApplyTo sets the Config fields s gives.
func (s Settings) ApplyTo(c *Config) {
	c.SetSettings(s.Apply(c.Settings()))
}

// Settings returns the Config's settings, as a side records them.
func (c Config) Settings() model.Settings {
	return model.Settings{
		MaxBandwidth: c.MaxBandwidth, DowntimeTargetNs: int64(c.DowntimeTarget), MaxRounds: int64(c.MaxRounds),
		AutoConverge: c.AutoConverge, ClockSkewCorrection: c.ClockSkewCorrection,
		// --verify-memory off skips the checksum as surely as the flag.
		SkipMemoryChecksum: c.SkipMemoryChecksum || c.VerifyMemory == VerifyOff,
	}
}

// SetSettings sets the Config's settings fields from st.
func (c *Config) SetSettings(st model.Settings) {
	c.MaxBandwidth, c.DowntimeTarget, c.MaxRounds = st.MaxBandwidth, time.Duration(st.DowntimeTargetNs), int(st.MaxRounds)
	c.AutoConverge, c.ClockSkewCorrection, c.SkipMemoryChecksum = st.AutoConverge, st.ClockSkewCorrection, st.SkipMemoryChecksum
}

// Query encodes s as URL query parameters, one per setting given, under
// the schema.Setting* names: the destination's upgrade request carries a
// migration's settings to the source so (docs/protocol.md §1).
func (s Settings) Query(q url.Values) {
	i := func(name string, v *int64) {
		if v != nil {
			q.Set(name, strconv.FormatInt(*v, 10))
		}
	}
	b := func(name string, v *bool) {
		if v != nil {
			q.Set(name, strconv.FormatBool(*v))
		}
	}
	i(schema.SettingMaxBandwidth, s.MaxBandwidth)
	i(schema.SettingDowntimeTarget, s.DowntimeTargetNs)
	i(schema.SettingMaxRounds, s.MaxRounds)
	b(schema.SettingAutoConverge, s.AutoConverge)
	b(schema.SettingClockSkewCorrection, s.ClockSkewCorrection)
	b(schema.SettingSkipMemoryChecksum, s.SkipMemoryChecksum)
}

// ParseSettingsQuery reads what Query wrote, ignoring other parameters;
// a setting given twice or not a number (a bool) is refused, naming it.
// It does not Validate.
func ParseSettingsQuery(q url.Values) (Settings, error) {
	var s Settings
	var errs []error
	one := func(name string) (string, bool) {
		vs, ok := q[name]
		if !ok {
			return "", false
		}
		if len(vs) != 1 {
			errs = append(errs, fmt.Errorf("%s given %d times", name, len(vs)))
			return "", false
		}
		return vs[0], true
	}
	i := func(name string, dst **int64) {
		if v, ok := one(name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want a whole number", name, v))
				return
			}
			*dst = &n
		}
	}
	b := func(name string, dst **bool) {
		if v, ok := one(name); ok {
			x, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want true or false", name, v))
				return
			}
			*dst = &x
		}
	}
	i(schema.SettingMaxBandwidth, &s.MaxBandwidth)
	i(schema.SettingDowntimeTarget, &s.DowntimeTargetNs)
	i(schema.SettingMaxRounds, &s.MaxRounds)
	b(schema.SettingAutoConverge, &s.AutoConverge)
	b(schema.SettingClockSkewCorrection, &s.ClockSkewCorrection)
	b(schema.SettingSkipMemoryChecksum, &s.SkipMemoryChecksum)
	if err := errors.Join(errs...); err != nil {
		return Settings{}, fmt.Errorf("%w: %w", ErrInvalidSettings, err)
	}
	return s, nil
}

// Full returns settings that give every value of st, so that applying it
// anywhere yields st.
func Full(st model.Settings) Settings {
	return Settings{
		MaxBandwidth: &st.MaxBandwidth, DowntimeTargetNs: &st.DowntimeTargetNs, MaxRounds: &st.MaxRounds,
		AutoConverge: &st.AutoConverge, ClockSkewCorrection: &st.ClockSkewCorrection, SkipMemoryChecksum: &st.SkipMemoryChecksum,
	}
}
