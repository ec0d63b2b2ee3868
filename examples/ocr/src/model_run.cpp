// model_run.cpp: the Runner (see model.hpp): executes the compiled steps channels-last,
// the transformer blocks with their hooks, and the CTC head.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstring>
#include <set>

#include "attention.hpp"
#include "model.hpp"

namespace ocr {

namespace {
// The compiler checked the shapes at its probe width; at a narrower image a step's output
// can vanish, which is the caller's input error, not a crash.
void check_output(const Step& s, int h, int w, int width) {
  if (h < 1 || w < 1)
    throw model_error("image width " + std::to_string(width) + " is too narrow for step '" + s.name +
                      "' (its output would be " + std::to_string(h) + " x " + std::to_string(w) + ")");
}
}  // namespace

bool Hooks::uses_backbone() const {
  if (transformer_only) return false;
  return bool(weights) || bool(activation) || bool(gemm) || bool(get(Nonlinearity::Swish)) ||
         bool(get(Nonlinearity::HardSwish)) || bool(get(Nonlinearity::HardSigmoid));
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

Runner::Runner(const Model& m) : m_(&m), bufs_(m.num_buffers) {}

std::vector<int> Model::live_buffers(int step) const {
  if (step < 0 || size_t(step) > steps.size()) throw model_error("live_buffers: step out of range");
  std::set<int> before, live;
  for (int i = 0; i < step; ++i) before.insert(steps[size_t(i)].out);
  for (size_t i = size_t(step); i < steps.size(); ++i)
    for (int b : {steps[i].in, steps[i].in2})
      if (b >= 0 && before.count(b)) live.insert(b);
  return std::vector<int>(live.begin(), live.end());
}

int Model::first_step_of(int layer) const {
  if (layer < 0 || size_t(layer) >= layers.size()) throw model_error("first_step_of: layer out of range");
  if (layers[size_t(layer)].info.transformer()) return transformer_step;
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].layer == layer) return int(i);
  throw model_error("first_step_of: layer " + layers[size_t(layer)].info.name + " is read by no step");
}

size_t Checkpoint::bytes() const {
  size_t n = 0;
  for (const auto& b : buffers) n += b.d.size() * sizeof(float);
  return n;
}

void Runner::snapshot(const std::vector<int>& ids, std::vector<Buffer>& to) const {
  to.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const Buffer& b = bufs_[size_t(ids[i])];
    Buffer& s = to[i];
    s.h = b.h; s.w = b.w; s.c = b.c;
    s.d.assign(b.d.begin(), b.d.begin() + b.size());
  }
}

void Runner::restore(const std::vector<int>& ids, const std::vector<Buffer>& from) {
  for (size_t i = 0; i < ids.size(); ++i) {
    const Buffer& s = from[i];
    Buffer& b = bufs_[size_t(ids[i])];
    b.resize(s.h, s.w, s.c);
    std::copy(s.d.begin(), s.d.end(), b.d.begin());
  }
}

void Runner::start(const float* image, int width, Probs& out) {
  if (width < 8 || width % 8 != 0) throw model_error("image width must be a positive multiple of 8");
  image_ = image;
  width_ = width;
  out_ = &out;
}

void Runner::run(const float* image, int width, const Hooks& hooks, Probs& out, BackboneCache* save) {
  start(image, width, out);
  const double t0 = thread_cpu_seconds();
  exec(0, m_->transformer_step, hooks);
  backbone_s_ = thread_cpu_seconds() - t0;
  if (save) snapshot(m_->cache_buffers, save->buffers);
  exec(m_->transformer_step, m_->steps.size(), hooks);
}

void Runner::run_cached(const BackboneCache& cache, const Hooks& hooks, Probs& out) {
  if (cache.buffers.size() != m_->cache_buffers.size()) throw model_error("backbone cache of another model");
  restore(m_->cache_buffers, cache.buffers);
  out_ = &out;
  exec(m_->transformer_step, m_->steps.size(), hooks);
}

void Runner::run(const float* image, int width, const Hooks& hooks, Probs& out, const std::vector<int>& steps,
                 std::vector<Checkpoint>& save) {
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i] < 1 || size_t(steps[i]) >= m_->steps.size() || (i && steps[i] <= steps[i - 1]))
      throw model_error("checkpoint steps must be ascending, within 1 .. steps - 1");
  start(image, width, out);
  save.resize(steps.size());
  size_t at = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    exec(at, size_t(steps[i]), hooks);
    at = size_t(steps[i]);
    save[i].step = steps[i];
    snapshot(m_->live_buffers(steps[i]), save[i].buffers);
  }
  exec(at, m_->steps.size(), hooks);
}

void Runner::run_from(const Checkpoint& cp, const Hooks& hooks, Probs& out) {
  if (cp.step < 1 || size_t(cp.step) >= m_->steps.size()) throw model_error("checkpoint of another model");
  const std::vector<int> ids = m_->live_buffers(cp.step);
  if (ids.size() != cp.buffers.size()) throw model_error("checkpoint of another model");
  restore(ids, cp.buffers);
  out_ = &out;
  exec(size_t(cp.step), m_->steps.size(), hooks);
}

void Runner::exec(size_t first, size_t last, const Hooks& hooks) {
  if (!profile) {
    for (size_t i = first; i < last; ++i) exec_step(m_->steps[i], hooks);
    return;
  }
  profile->resize(m_->steps.size());
  for (size_t i = first; i < last; ++i) {
    const double t0 = thread_cpu_seconds();
    exec_step(m_->steps[i], hooks);
    (*profile)[i] += thread_cpu_seconds() - t0;
  }
}

void Runner::exec_step(const Step& s, const Hooks& hooks) {
  switch (s.kind) {
    case Step::Kind::Input: {  // [3, 48, W] planar -> [48*W, 3]
      Buffer& y = bufs_[s.out];
      const int H = m_->input_height, W = width_;
      y.resize(H, W, 3);
      const int64_t plane = int64_t(H) * W;
      for (int64_t p = 0; p < plane; ++p)
        for (int c = 0; c < 3; ++c) y.d[p * 3 + c] = image_[c * plane + p];
      break;
    }
    case Step::Kind::Conv:
      conv(s, hooks);
      break;
    case Step::Kind::GlobalAvgPool: {
      const Buffer& x = bufs_[s.in];
      Buffer& y = bufs_[s.out];
      y.resize(1, 1, x.c);
      std::fill(y.d.begin(), y.d.begin() + x.c, 0.f);
      const int64_t P = int64_t(x.h) * x.w;
      for (int64_t p = 0; p < P; ++p)
        for (int c = 0; c < x.c; ++c) y.d[c] += x.d[p * x.c + c];
      for (int c = 0; c < x.c; ++c) y.d[c] /= float(P);
      break;
    }
    case Step::Kind::MulChannel: {
      const Buffer& x = bufs_[s.in];
      const Buffer& sc = bufs_[s.in2];
      Buffer& y = bufs_[s.out];
      y.resize(x.h, x.w, x.c);
      const int64_t P = int64_t(x.h) * x.w;
      for (int64_t p = 0; p < P; ++p)
        for (int c = 0; c < x.c; ++c) y.d[p * x.c + c] = x.d[p * x.c + c] * sc.d[c];
      break;
    }
    case Step::Kind::AvgPool: {
      const Buffer& x = bufs_[s.in];
      Buffer& y = bufs_[s.out];
      const int Ho = x.h < s.kh ? 0 : (x.h - s.kh) / s.sh + 1, Wo = x.w < s.kw ? 0 : (x.w - s.kw) / s.sw + 1, C = x.c;
      check_output(s, Ho, Wo, width_);
      y.resize(Ho, Wo, C);
      const float inv = 1.f / float(s.kh * s.kw);
      for (int oy = 0; oy < Ho; ++oy)
        for (int ox = 0; ox < Wo; ++ox) {
          float* yo = y.d.data() + (int64_t(oy) * Wo + ox) * C;
          std::fill(yo, yo + C, 0.f);
          for (int ky = 0; ky < s.kh; ++ky)
            for (int kx = 0; kx < s.kw; ++kx) {
              const float* xi = x.d.data() + (int64_t(oy * s.sh + ky) * x.w + ox * s.sw + kx) * C;
              for (int c = 0; c < C; ++c) yo[c] += xi[c];
            }
          for (int c = 0; c < C; ++c) yo[c] *= inv;
        }
      break;
    }
    case Step::Kind::ConcatChannels: {
      const Buffer& a = bufs_[s.in];
      const Buffer& b = bufs_[s.in2];
      Buffer& y = bufs_[s.out];
      if (a.h != b.h || a.w != b.w)
        throw model_error("image width " + std::to_string(width_) + ": the inputs of step '" + s.name +
                          "' differ in size");
      y.resize(a.h, a.w, a.c + b.c);
      const int64_t P = int64_t(a.h) * a.w;
      for (int64_t p = 0; p < P; ++p) {
        std::copy(a.d.data() + p * a.c, a.d.data() + (p + 1) * a.c, y.d.data() + p * y.c);
        std::copy(b.d.data() + p * b.c, b.d.data() + (p + 1) * b.c, y.d.data() + p * y.c + a.c);
      }
      break;
    }
    case Step::Kind::Transformer:
      transformer(s, hooks);
      break;
    case Step::Kind::Head:
      head(s, hooks, *out_);
      break;
  }
}

namespace {

// The activation epilogue of a conv: act, then the post affine; a technique's
// replacement of the act's non-linearity runs over the whole output.
void epilogue(const Step& s, float* y, int64_t n, const Hooks& hooks) {
  const NonlinearityFn* hook = nullptr;
  if (s.act == Act::HardSwish) hook = &hooks.get(Nonlinearity::HardSwish);
  if (s.act == Act::Swish) hook = &hooks.get(Nonlinearity::Swish);
  if (s.act == Act::HardSigmoid) hook = &hooks.get(Nonlinearity::HardSigmoid);
  if (hook && *hook) {
    (*hook)(y, n);
    if (s.post_affine)
      for (int64_t i = 0; i < n; ++i) y[i] = s.post_a * y[i] + s.post_b;
    return;
  }
  const float a = s.post_a, b = s.post_b;
  switch (s.act) {
    case Act::None:
      break;
    case Act::Relu:
      for (int64_t i = 0; i < n; ++i) y[i] = a * std::max(y[i], 0.f) + b;
      break;
    case Act::HardSwish:
      for (int64_t i = 0; i < n; ++i) y[i] = a * hardswish(y[i]) + b;
      break;
    case Act::Swish:
      for (int64_t i = 0; i < n; ++i) y[i] = a * swish(y[i]) + b;
      break;
    case Act::HardSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = a * hardsigmoid(y[i], s.act_alpha, s.act_beta) + b;
      break;
  }
}

}  // namespace

void Runner::conv(const Step& s, const Hooks& hooks) {
  const Layer& L = m_->layers[s.layer];
  const Buffer& x = bufs_[s.in];
  Buffer& y = bufs_[s.out];
  const int Hp = x.h + 2 * L.ph, Wp = x.w + 2 * L.pw;
  const int Ho = Hp < L.kh ? 0 : (Hp - L.kh) / L.sh + 1, Wo = Wp < L.kw ? 0 : (Wp - L.kw) / L.sw + 1;
  check_output(s, Ho, Wo, width_);
  y.resize(Ho, Wo, L.info.out);
  const float* xin = x.d.data();
  if (hooks.activation) {
    tmp_.assign(x.d.begin(), x.d.begin() + x.size());
    ActivationSite site{Point::ConvInput, &L.info, -1, 0, x.h * x.w, x.c};
    hooks.activation(site, tmp_.data());
    xin = tmp_.data();
  }
  if (L.info.kind == LayerInfo::Kind::Depthwise) {
    depthwise_conv(xin, x.h, x.w, x.c, L.w_taps.data(), L.bias.data(), L.kh, L.kw, L.sh, L.sw, L.ph, L.pw,
                   y.d.data(), Ho, Wo);
  } else {
    const float* a = xin;
    int lda = x.c;
    if (!(L.kh == 1 && L.kw == 1 && L.sh == 1 && L.sw == 1 && L.ph == 0 && L.pw == 0)) {
      col_.resize(size_t(Ho) * Wo * L.info.k);
      im2col(xin, x.h, x.w, x.c, L.kh, L.kw, L.sh, L.sw, L.ph, L.pw, Ho, Wo, col_.data());
      a = col_.data();
      lda = L.info.k;
    }
    GemmArgs g{&L.info, a, Ho * Wo, L.info.k, lda, L.w.data(), L.info.k, L.bias.data(),
               y.d.data(), L.info.out, L.info.out};
    if (hooks.gemm) hooks.gemm(g);
    else gemm_prepacked(g, L.w_packed);
  }
  epilogue(s, y.d.data(), y.size(), hooks);
}

void Runner::linear(const Layer& L, const float* x, int n, int ldx, float* y, int ldy, const Hooks& hooks) {
  if (hooks.activation) {
    tmp2_.resize(size_t(n) * L.info.k);
    for (int r = 0; r < n; ++r) std::copy(x + int64_t(r) * ldx, x + int64_t(r) * ldx + L.info.k, tmp2_.data() + int64_t(r) * L.info.k);
    ActivationSite site{Point::LinearInput, &L.info, L.info.block, 0, n, L.info.k};
    hooks.activation(site, tmp2_.data());
    x = tmp2_.data();
    ldx = L.info.k;
  }
  GemmArgs g{&L.info, x, n, L.info.k, ldx, L.w.data(), L.info.k, L.bias.data(), y, L.info.out, ldy};
  if (hooks.gemm) hooks.gemm(g);
  else gemm_prepacked(g, L.w_packed);
}

void Runner::head(const Step& s, const Hooks& hooks, Probs& out) {
  const Layer& L = m_->layers[s.layer];
  const Buffer& x = bufs_[s.in];
  const int T = x.h * x.w;
  out.T = T;
  out.classes = L.info.out;
  out.p.resize(size_t(T) * L.info.out);
  linear(L, x.d.data(), T, x.c, out.p.data(), L.info.out, hooks);
  softmax_rows(out.p.data(), T, L.info.out, nullptr);
}

}  // namespace ocr
