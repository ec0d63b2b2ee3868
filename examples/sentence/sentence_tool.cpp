// sentence_tool: the Universal Sentence Encoder lite runner from the command line.
//   sentence_tool sentences [--count N]        Reuters sentences, one per line (N evenly
//                                              spaced over all of them; default all)
//   sentence_tool ids --in FILE                token ids of each line of FILE
//   sentence_tool embed --in FILE --out F32 [--threads T] [--technique NAME]
//                                              embeddings (float32, lines x 512)
//   sentence_tool bench --in FILE [--threads T] [--batch B] [--repeat R] [--technique NAME]
//                                              "WALL_MS CPU_MS" per sentence, end to end
//                                              (tokenizer + encoder), best of R passes in
//                                              batches of B (default 32 and 3)
//   sentence_tool report [--sentences N] [--spam P] [--repeat R] [--only a,b] [--svg FILE]
//                        [--chart DATA]        the technique table (study.hpp): quality
//                                              measures and speed of every row; the chart
//                                              of agreement vs effect to FILE, its data
//                                              (curve_chart.hpp's text form) to DATA
// --chunk-tokens C: tokens per packed chunk (default 256).
// NAME: a row of the report (default float; see study.cpp), e.g. w8a8, accelerated.
// The model comes from $ETK_SENTENCE_MODEL_DIR or the etk cache (paths.hpp).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "encoder.hpp"
#include "etk/core/context.hpp"
#include "paths.hpp"
#include "reuters.hpp"
#include "study.hpp"
#include "tokenizer.hpp"

namespace {

std::string option(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  if (fallback.empty()) throw std::invalid_argument("missing option --" + name);
  return fallback;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::istringstream in(examples::read_file(path));
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(l);
  return lines;
}

double cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

struct Runner {
  sentence::UseModel model;
  sentence::Tokenizer tokenizer;
  std::unique_ptr<sentence::Encoder> encoder;
  std::unique_ptr<etk::SimpleThreadPool> pool;
  etk::Context ctx;
  Runner(int threads, const sentence::Technique& technique)
      : model(sentence::load_use_lite(sentence::model_dir_from_env() + "/model.json")),
        tokenizer(sentence::Tokenizer::from_file(sentence::model_dir_from_env() + "/vocab.json")),
        encoder(new sentence::Encoder(model, technique.options)) {
    if (technique.setup)
      throw std::invalid_argument("technique '" + technique.name + "' is calibrated by the report; not runnable here");
    if (threads > 1) {
      pool.reset(new etk::SimpleThreadPool(threads));
      ctx.pool = pool.get();
    }
  }
  void embed(const std::vector<std::string>& lines, std::size_t first, std::size_t last, float* out) const {
    // The tokenizer runs on the encoder's pool too: serial, it is a few % of the
    // accelerated row's time at one thread and twice that share at two.
    std::vector<sentence::TokenIds> ids(last - first);
    etk::parallel_for(ctx, std::ptrdiff_t(ids.size()), [&](std::ptrdiff_t i, int) {
      ids[std::size_t(i)] = tokenizer.encode(lines[first + std::size_t(i)]);
    });
    encoder->embed(ids, out + first * std::size_t(encoder->embedding_dim()), ctx);
  }
};

int run(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "sentences") {
    const auto all = examples::reuters_sentences(examples::reuters_dir_from_env());
    const std::size_t count = std::stoul(option(argc, argv, "count", std::to_string(all.size())));
    const std::size_t n = std::min(count, all.size());
    for (std::size_t k = 0; k < n; ++k) std::cout << all[(2 * k + 1) * all.size() / (2 * n)] << "\n";
    return 0;
  }
  if (cmd == "report") {
    sentence::StudyOptions opt;
    opt.sentences = std::stoi(option(argc, argv, "sentences", std::to_string(opt.sentences)));
    opt.spam_per_class = std::stoi(option(argc, argv, "spam", std::to_string(opt.spam_per_class)));
    opt.repeat = std::stoi(option(argc, argv, "repeat", std::to_string(opt.repeat)));
    opt.svg = option(argc, argv, "svg", " ");
    if (opt.svg == " ") opt.svg.clear();
    opt.chart_data = option(argc, argv, "chart", " ");
    if (opt.chart_data == " ") opt.chart_data.clear();
    std::istringstream only(option(argc, argv, "only", ","));
    for (std::string name; std::getline(only, name, ',');)
      if (!name.empty()) opt.only.push_back(sentence::sentence_technique(name).name);
    sentence::run_sentence_study(opt, std::cout);
    return 0;
  }
  const auto lines = read_lines(option(argc, argv, "in", ""));
  if (cmd == "ids") {
    const auto tok = sentence::Tokenizer::from_file(sentence::model_dir_from_env() + "/vocab.json");
    for (const auto& l : lines) {
      for (auto id : tok.encode(l)) std::cout << id << " ";
      std::cout << "\n";
    }
    return 0;
  }
  sentence::Technique technique = sentence::sentence_technique(option(argc, argv, "technique", "float"));
  technique.options.chunk_tokens = std::stoi(option(argc, argv, "chunk-tokens", std::to_string(technique.options.chunk_tokens)));
  const Runner r(std::stoi(option(argc, argv, "threads", "1")), technique);
  std::vector<float> out(lines.size() * std::size_t(r.encoder->embedding_dim()));
  if (cmd == "embed") {
    r.embed(lines, 0, lines.size(), out.data());
    std::ofstream f(option(argc, argv, "out", ""), std::ios::binary);
    f.write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size() * sizeof(float)));
    if (!f) throw std::runtime_error("cannot write the embeddings");
    return 0;
  }
  if (cmd == "bench") {
    const std::size_t batch = std::stoul(option(argc, argv, "batch", "32"));
    const int repeat = std::stoi(option(argc, argv, "repeat", "3"));
    auto pass = [&] {
      for (std::size_t i = 0; i < lines.size(); i += batch) r.embed(lines, i, std::min(lines.size(), i + batch), out.data());
    };
    pass();  // warm-up
    double best_wall = 1e300, best_cpu = 1e300;
    for (int k = 0; k < repeat; ++k) {
      const double c0 = cpu_ms();
      const auto t0 = std::chrono::steady_clock::now();
      pass();
      const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      best_wall = std::min(best_wall, wall);
      best_cpu = std::min(best_cpu, cpu_ms() - c0);
    }
    std::printf("%.4f %.4f\n", best_wall / double(lines.size()), best_cpu / double(lines.size()));
    return 0;
  }
  throw std::invalid_argument("usage: sentence_tool sentences|ids|embed|bench|report ... (see the top of sentence_tool.cpp)");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sentence_tool: " << e.what() << "\n";
    return 1;
  }
}
