// Built with -fno-exceptions: a bad attention call (k has one head, q two) must print
// etk's message naming the argument and abort.
#include <etk/etk.hpp>

#include <vector>

int main() {
  std::vector<float> q(2 * 4 * 8, 0.5f), out(q.size());
  etk::dense_attention(etk::HeadsView<const float>(q.data(), 2, 4, 8),
                       etk::HeadsView<const float>(q.data(), 1, 4, 8),
                       etk::HeadsView<const float>(q.data(), 2, 4, 8),
                       etk::HeadsView<float>(out.data(), 2, 4, 8));
  return 0;  // not reached
}
