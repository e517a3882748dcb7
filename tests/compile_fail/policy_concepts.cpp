// Each CASE composes something that does not model its concept; the build must fail with a message that
// names the concept. CASE 0 is the control: the same file with correct types compiles.
#include <cascade/chain.hpp>

namespace {
struct NotAClassifier {
    int classify(int) const { return 0; }
};
struct NotARetry {
    bool next_delay() const { return false; }
};
struct NotAnAcceptor {
    bool accept(cascade::Completion const&) const { return true; }
};
struct NotAnObserver {};
struct NotATier {
    void attempt() {}
};
struct NotAHedge {
    std::chrono::milliseconds delay() const { return {}; }
};
struct NotAClock {
    int now() const { return 0; }
};
} // namespace

#if CASE == 0
using P = cascade::DefaultPolicies::with_retry<cascade::NoRetry>::with_observe<cascade::NoObserve>;
using C = cascade::BasicChain<P, cascade::Template>;
#elif CASE == 1
using P = cascade::DefaultPolicies::with_classify<NotAClassifier>;
#elif CASE == 2
using P = cascade::DefaultPolicies::with_retry<NotARetry>;
#elif CASE == 3
using P = cascade::DefaultPolicies::with_accept<NotAnAcceptor>;
#elif CASE == 4
using P = cascade::DefaultPolicies::with_observe<NotAnObserver>;
#elif CASE == 5
using P = cascade::DefaultPolicies;
using C = cascade::BasicChain<P, NotATier, cascade::Template>;
#elif CASE == 6
using P = cascade::DefaultPolicies;
using C = cascade::BasicChain<P, cascade::Template, cascade::Template>;
#elif CASE == 7
using P = cascade::DefaultPolicies::with_hedge<NotAHedge>;
#elif CASE == 8
using P = cascade::DefaultPolicies::with_clock<NotAClock>;
#endif

int main() {
    [[maybe_unused]] P policies;
#if CASE == 0 || CASE == 5 || CASE == 6
    [[maybe_unused]] auto size = sizeof(C);
#endif
}
