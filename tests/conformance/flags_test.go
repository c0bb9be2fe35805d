package conformance

import (
	"flag"
	"os"
)

// flagString registers a string flag whose default is taken from the
// environment variable env when that is set.
func flagString(name, env, value, usage string) *string {
	if v, ok := os.LookupEnv(env); ok {
		value = v
	}
	return flag.String(name, value, usage+" (env "+env+")")
}
