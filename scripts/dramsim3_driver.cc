// Closed-loop driver for DRAMsim3 (our own code, uses only its public MemorySystem API).
// usage: dramsim3_driver CONFIG ADDR_FILE OUTSTANDING(0 = only the controller queues limit) OUTDIR
// ADDR_FILE: one hex byte address per line, all reads. Prints one JSON line.
#include <cstdio>
#include <cstdint>
#include <deque>
#include <fstream>
#include <iostream>
#include <unordered_map>
#include <vector>
#include "memory_system.h"
using namespace dramsim3;
int main(int argc, char** argv) {
    if (argc < 5) { std::cerr << "usage\n"; return 1; }
    std::vector<uint64_t> addr;
    std::ifstream f(argv[2]);
    uint64_t a;
    while (f >> std::hex >> a) addr.push_back(a);
    const size_t n = addr.size();
    const long k = std::stol(argv[3]);
    std::vector<uint64_t> issue(n, 0), done(n, 0);
    std::unordered_map<uint64_t, std::deque<size_t>> pending;
    uint64_t clk = 0;
    size_t next = 0, ndone = 0;
    auto rd = [&](uint64_t ad) {
        auto& q = pending[ad];
        done[q.front()] = clk; q.pop_front(); ndone++;
    };
    auto wr = [&](uint64_t) {};
    MemorySystem ms(argv[1], argv[4], rd, wr);
    while (ndone < n) {
        // one new request per cycle at most, in order (as the trace front end does)
        if (next < n && (k <= 0 || (long)(next - ndone) < k) &&
            ms.WillAcceptTransaction(addr[next], false)) {
            ms.AddTransaction(addr[next], false);
            pending[addr[next]].push_back(next);
            issue[next] = clk;
            next++;
        }
        ms.ClockTick();
        clk++;
    }
    uint64_t last = 0; double lat = 0;
    for (size_t i = 0; i < n; i++) { if (done[i] > last) last = done[i]; lat += double(done[i] - issue[i]); }
    std::printf("{\"requests\": %zu, \"tck_ns\": %.6f, \"request_bytes\": %d, \"first_issue_ck\": %llu, "
                "\"last_done_ck\": %llu, \"avg_read_latency_ck\": %.4f}\n", n, ms.GetTCK(),
                ms.GetBusBits() / 8 * ms.GetBurstLength(), (unsigned long long)issue[0],
                (unsigned long long)last, lat / n);
    return 0;
}
