// ocr_tool: developer commands around the PP-OCRv4 runner.
//   ocr_tool info                          the compiled steps and layers
//   ocr_tool dump OUTDIR [data options]    images.f32 ([N,3,48,W] float32) + lines.txt
//   ocr_tool read [data options]           read the lines, print truth / output / time
//   ocr_tool probs IMAGES.f32 W N OUT.f32  run N images of width W, write [N,T,C] probs
//   ocr_tool bench IMAGES.f32 W N THREADS  ms per line, lines shared out to THREADS runners
//   ocr_tool profile IMAGES.f32 W N        wall time per compiled step
//   ocr_tool decode-study [options]         LATTE decode accuracy on the recorded attention (decode_study.hpp)
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli.hpp"
#include "ctc.hpp"
#include "dataset.hpp"
#include "decode_study.hpp"
#include "model.hpp"

using namespace ocr;

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: ocr_tool info|dump|read|probs ...\n";
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "decode-study") return decode_study_command(argc - 1, argv + 1);
  const std::string mdir = model_dir_from_env();
  if (cmd == "info") {
    Model m = Model::load(mdir + "/ch_PP-OCRv4_rec_infer.onnx");
    std::cout << "graph nodes " << m.num_graph_nodes << ", parameters " << m.num_parameters << ", steps "
              << m.steps.size() << ", layers " << m.layers.size() << ", blocks " << m.blocks.size() << ", heads "
              << m.heads << "x" << m.head_dim << ", scale " << m.attn_scale << ", classes " << m.classes << "\n";
    for (const auto& l : m.layers)
      std::cout << "  " << l.info.name << " " << l.info.role << " out=" << l.info.out << " k=" << l.info.k
                << " block=" << l.info.block << "\n";
    return 0;
  }
  if (cmd == "profile") {  // profile IMAGES.f32 W N: time per step
    const int W = std::atoi(argv[3]), N = std::atoi(argv[4]);
    Model m = Model::load(mdir + "/ch_PP-OCRv4_rec_infer.onnx");
    std::ifstream in(argv[2], std::ios::binary);
    std::vector<float> img(size_t(3) * 48 * W * N);
    in.read(reinterpret_cast<char*>(img.data()), img.size() * 4);
    Runner r(m);
    std::vector<double> prof;
    r.profile = &prof;
    Probs p;
    for (int i = 0; i < N; ++i) r.run(img.data() + size_t(i) * 3 * 48 * W, W, Hooks{}, p);
    double total = 0;
    for (double v : prof) total += v;
    for (size_t i = 0; i < m.steps.size(); ++i) {
      const Step& s = m.steps[i];
      const Buffer& y = r.buffer(s.out);
      double gf = 0;
      if (s.layer >= 0) gf = 2.0 * y.h * y.w * m.layers[s.layer].info.k * (s.kind == Step::Kind::Conv && m.layers[s.layer].info.kind == LayerInfo::Kind::Depthwise ? 1 : m.layers[s.layer].info.out) / 1e9;
      if (s.kind == Step::Kind::Head) gf = 2.0 * r.buffer(s.in).w * m.layers[s.layer].info.k * m.layers[s.layer].info.out / 1e9;
      std::printf("%3zu %-16s %-8d %-20s %8.3f ms %4dx%-4dx%-4d %6.1f GF/s\n", i, s.name.c_str(), int(s.kind),
                  s.layer >= 0 ? m.layers[s.layer].info.name.c_str() : "", 1e3 * prof[i] / N, y.h, y.w, y.c,
                  gf / (prof[i] / N + 1e-12));
    }
    std::printf("total %.3f ms/line\n", 1e3 * total / N);
    return 0;
  }
  if (cmd == "bench") {  // bench IMAGES.f32 W N THREADS: ms per line (after 3 warm-ups)
    if (argc < 6) throw std::invalid_argument("bench IMAGES.f32 W N THREADS");
    const int W = std::atoi(argv[3]), N = std::atoi(argv[4]), threads = std::atoi(argv[5]);
    if (W <= 0 || N <= 0 || threads <= 0) throw std::invalid_argument("bench: W, N, THREADS must be positive");
    Model m = Model::load(mdir + "/ch_PP-OCRv4_rec_infer.onnx");
    std::ifstream in(argv[2], std::ios::binary);
    const size_t per = size_t(3) * 48 * W;
    std::vector<float> img(per * N);
    in.read(reinterpret_cast<char*>(img.data()), img.size() * 4);
    if (!in) throw std::runtime_error("bench: fewer than N images in the file");
    // Lines are shared out to `threads` runners (one per thread).
    auto work = [&](int tid, int count) {
      Runner r(m);
      Probs p;
      for (int i = tid; i < count; i += threads) r.run(img.data() + per * size_t(i % N), W, Hooks{}, p);
    };
    work(0, std::min(3, N));
    auto cpu_now = [] {
      timespec ts;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
    };
    const double c0 = cpu_now();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work, t, N);
    work(0, N);
    for (auto& t : pool) t.join();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%.3f %.3f\n", ms / N, (cpu_now() - c0) / N);  // wall and CPU ms per line
    return 0;
  }
  if (cmd == "probs") {
    if (argc < 6) throw std::invalid_argument("probs IMAGES.f32 W N OUT.f32");
    const int W = std::atoi(argv[3]), N = std::atoi(argv[4]);
    Model m = Model::load(mdir + "/ch_PP-OCRv4_rec_infer.onnx");
    std::ifstream in(argv[2], std::ios::binary);
    std::ofstream out(argv[5], std::ios::binary);
    std::vector<float> img(size_t(3) * 48 * W);
    Runner r(m);
    Probs p;
    for (int i = 0; i < N; ++i) {
      in.read(reinterpret_cast<char*>(img.data()), img.size() * 4);
      if (!in) throw std::runtime_error("short images file");
      r.run(img.data(), W, Hooks{}, p);
      out.write(reinterpret_cast<const char*>(p.p.data()), p.p.size() * 4);
    }
    return 0;
  }
  Cli cli(argc - 1, argv + 1);
  DataOptions o = cli.data_options();
  if (cmd == "dump") {
    const std::string dir = cli.positional(0, "OUTDIR");
    Dataset d = make_dataset(o, "dump");
    std::ofstream img(dir + "/images.f32", std::ios::binary), txt(dir + "/lines.txt");
    for (size_t i = 0; i < d.size(); ++i) {
      img.write(reinterpret_cast<const char*>(d.images[i].data()), d.images[i].size() * 4);
      txt << d.truth[i] << "\n";
    }
    std::cerr << "wrote " << d.size() << " lines of width " << d.width << " to " << dir << "\n";
    return 0;
  }
  if (cmd == "read") {
    Model m = Model::load(mdir + "/ch_PP-OCRv4_rec_infer.onnx");
    Dictionary dict = Dictionary::load(mdir + "/ppocr_keys_v1.txt");
    Dataset d = make_dataset(o, "read");
    Runner r(m);
    Probs p;
    int exact = 0;
    double ms = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      auto t0 = std::chrono::steady_clock::now();
      r.run(d.images[i].data(), d.width, Hooks{}, p);
      ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::string s = ctc_text(ctc_greedy(p.p.data(), p.T, p.classes), dict);
      exact += s == d.truth[i];
      if (s != d.truth[i] || cli.flag("verbose")) std::cout << "[" << d.truth[i] << "] -> [" << s << "]\n";
    }
    std::cout << exact << "/" << d.size() << " exact, " << ms / d.size() << " ms/line\n";
    return 0;
  }
  throw std::invalid_argument("unknown command " + cmd);
} catch (const std::exception& e) {
  std::cerr << "ocr_tool: " << e.what() << "\n";
  return 1;
}
