// Closed-loop host for Ramulator 2 (our own code; uses only its library API: Config, Factory,
// the External frontend's receive_external_requests and IMemorySystem::tick / print_stats).
// usage: ramulator2_driver CONFIG TRACE REQUEST_BYTES OUTSTANDING STATS_OUT
// OUTSTANDING: host requests pending at most (0 = only the controller's queues limit).
// CONFIG: a Ramulator 2 config (YAML or JSON) whose frontend is External.
// TRACE: one host request per line, "R <hex byte address>" or "W <hex byte address>".
// A host request of REQUEST_BYTES is sent as ceil(REQUEST_BYTES / tx_bytes) transactions of
// tx_bytes at consecutive addresses (tx_bytes = one burst of the configured device) and is done
// when its last transaction is. At most one transaction enters per memory clock, in order; a
// new host request starts only while fewer than OUTSTANDING host requests are pending.
// Completion: a read when the controller returns it (RD issue + read latency), a write when its
// WR command issues (Ramulator 2 calls a write back at that point). Prints one JSON line; the
// memory system's own statistics go to STATS_OUT (YAML).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "ramulator/base/config.h"
#include "ramulator/base/factory.h"
#include "ramulator/base/request.h"
#include "ramulator/frontend/i_frontend.h"
#include "ramulator/memory_system/i_memory_system.h"

using namespace Ramulator;

int main(int argc, char** argv) {
  if (argc < 6) {
    std::cerr << "usage: ramulator2_driver CONFIG TRACE REQUEST_BYTES OUTSTANDING STATS_OUT\n";
    return 1;
  }
  std::vector<uint64_t> addr;
  std::vector<char> is_wr;
  {
    std::ifstream f(argv[2]);
    std::string op;
    uint64_t a;
    while (f >> op >> std::hex >> a) {
      addr.push_back(a);
      is_wr.push_back(op == "W");
    }
  }
  const size_t n = addr.size();
  const int req_bytes = std::stoi(argv[3]);
  const long limit = std::stol(argv[4]);

  auto config = Config::parse_config_file(argv[1]);
  IFrontEnd* fe = Factory::create_frontend(config);
  IMemorySystem* ms = Factory::create_memory_system(config);
  fe->connect_memory_system(ms);
  ms->connect_frontend(fe);

  const int tx = ms->get_tx_bytes();
  const int parts = (req_bytes + tx - 1) / tx;
  std::vector<int64_t> arrive(n, -1), done(n, -1);
  std::vector<int> left(n, parts);
  int64_t now = 0;  // the memory clock at which a callback runs
  size_t ndone = 0, next = 0, nreads = 0;
  int part = 0;
  long pending = 0;

  int64_t t = 0;
  while (ndone < n) {
    if (next < n && (part > 0 || limit <= 0 || pending < limit)) {
      const size_t j = next;
      now = t;  // a coalesced write is called back inside send()
      bool ok = fe->receive_external_requests(
          is_wr[j] ? Request::Type::Write : Request::Type::Read, addr[j] + uint64_t(part) * tx, 0,
          [j, &now, &left, &done, &ndone, &pending](Request&) {
            if (--left[j] == 0) {
              done[j] = now;
              ndone++;
              pending--;
            }
          },
          tx);
      if (ok) {
        if (part == 0) {
          arrive[j] = t;
          pending++;
        }
        if (++part == parts) {
          part = 0;
          next++;
        }
      }
    }
    now = t + 1;  // the controller advances its clock first, then serves completions
    ms->tick();
    t++;
  }
  fe->finalize();
  ms->finalize();
  ms->update_stats_recursive();
  {
    std::ofstream so(argv[5]);
    ms->print_stats(so);
  }

  int64_t last = 0;
  double lat = 0;
  for (size_t i = 0; i < n; i++) {
    if (done[i] > last) last = done[i];
    if (!is_wr[i]) {
      lat += double(done[i] - arrive[i]);
      nreads++;
    }
  }
  std::printf(
      "{\"requests\": %zu, \"reads\": %zu, \"tck_ns\": %.6f, \"tx_bytes\": %d, "
      "\"request_bytes\": %d, \"first_issue_ck\": %lld, \"last_done_ck\": %lld, "
      "\"ticks\": %lld, \"avg_read_latency_ck\": %.4f}\n",
      n, nreads, ms->get_tCK(), tx, req_bytes, (long long)arrive[0], (long long)last, (long long)t,
      nreads ? lat / nreads : 0.0);
  return 0;
}
