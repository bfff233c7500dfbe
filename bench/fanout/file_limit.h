// Shared by the bench/fanout programs (which link nothing of freshframe's):
// a thousand connections need more descriptors than the usual soft limit.
#pragma once

#include <sys/resource.h>

namespace fanout_bench {

// Raises the soft RLIMIT_NOFILE to the hard one; silently keeps it if not allowed.
inline void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace fanout_bench
