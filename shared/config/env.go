package config

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Env is the part of the configuration a function reads from its environment only: the
// functions that need no configuration document (nor the SSM read) load this instead.
type Env struct {
	Stage         string
	LogLevel      string
	Table         string
	LocalEndpoint bool
	// Vars are the further variables the function asked for, each set.
	Vars map[string]string
}

// LoadEnv reads the environment's settings and the named further variables, reporting
// every problem at once.
func LoadEnv(getenv func(string) string, vars ...string) (Env, error) {
	e := Env{
		Stage: getenv(EnvStage), LogLevel: getenv(EnvLogLevel), Table: getenv(EnvTable),
		LocalEndpoint: getenv("AWS_ENDPOINT_URL") != "" || getenv("AWS_ENDPOINT_URL_DYNAMODB") != "",
		Vars:          map[string]string{},
	}
	if e.LogLevel == "" {
		e.LogLevel = "info"
	}
	var problems []string
	for _, v := range append([]string{EnvTable}, vars...) {
		if getenv(v) == "" {
			problems = append(problems, v+" is not set")
		}
		e.Vars[v] = getenv(v)
	}
	if len(problems) > 0 {
		return e, errors.New("invalid environment:\n  - " + strings.Join(problems, "\n  - "))
	}
	return e, nil
}

// Hours reads a setting of whole hours; def when it is empty or not a positive number.
func Hours(value string, def time.Duration) time.Duration {
	n, err := strconv.Atoi(value)
	if err != nil || n <= 0 {
		return def
	}
	return time.Duration(n) * time.Hour
}
