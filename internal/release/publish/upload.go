package publish

import (
	"os"
	"path/filepath"
	"time"

	"github.com/second-inc/second-release/internal/release/progress"
)

// watchUpload reports an `npm publish` upload of tarball as it goes. npm
// sends the tarball base64-encoded inside a JSON document, so the upload is
// about 4/3 of the file; how much has gone is what the registry end has
// acknowledged on npm's connections (sentBytes). The JSON around the
// tarball makes that run a little past the estimate, so it is held below
// the total until npm exits successfully; where the kernel does not tell
// (not Linux), only the start and the end are reported.
func watchUpload(report progress.Func, tarball string) func(pid int) func(error) {
	item := filepath.Base(tarball)
	var total int64 = 1
	if st, err := os.Stat(tarball); err == nil {
		total = (st.Size() + 2) / 3 * 4
	}
	return func(pid int) func(error) {
		report(item, 0, total)
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			var last int64
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					// Sockets come and go (a closed one's count is lost):
					// never report going backwards.
					if n, ok := sentBytes(pid); ok && n > last {
						last = n
						report(item, min(n, total-1), total)
					}
				}
			}
		}()
		return func(err error) {
			close(stop)
			<-stopped
			if err != nil {
				report(item, -1, total)
				return
			}
			report(item, total, total)
		}
	}
}
