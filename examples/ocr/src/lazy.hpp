// lazy.hpp: state that a technique's rows share (a calibration, a search), built by the
// first row set-up that needs it. A value is published only once its build has returned:
// a build that throws leaves nothing behind, so the next row builds again (and fails the
// same clean way) instead of reading a half-built object; builds run one at a time, so
// rows set up on several report jobs share one build. Keep one per Study (capture it in
// the rows' set-ups), never in a static, so that a second Study does not see the first's.
#pragma once

#include <map>
#include <memory>
#include <mutex>

namespace ocr {

template <class T, class Key = int>
class Lazy {
 public:
  // The value for `key`, built by build() (returning std::shared_ptr<T>) if not yet there.
  template <class Build>
  std::shared_ptr<const T> get(const Key& key, Build&& build) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = values_.find(key);
    if (it != values_.end()) return it->second;
    std::shared_ptr<const T> v = build();
    values_.emplace(key, v);
    return v;
  }
  template <class Build>
  std::shared_ptr<const T> get(Build&& build) {
    return get(Key{}, std::forward<Build>(build));
  }

 private:
  std::mutex mutex_;
  std::map<Key, std::shared_ptr<const T>> values_;
};

}  // namespace ocr
