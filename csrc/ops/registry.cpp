#include "registry.h"

#include <sstream>
#include <unordered_map>

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include "traits.h"

namespace fused_act {

namespace {

std::vector<std::string> split_names(const char* list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

Params<double> padded(c10::ArrayRef<double> params) {
  Params<double> p{};
  for (size_t i = 0; i < params.size() && i < kMaxParams; ++i) p.v[i] = params[i];
  return p;
}

ActivationInfo info(ActId id, const char* functor, const ActivationTraits& t) {
  return {id,
          t.name,
          std::string("fused_act.") + t.name,
          split_names(t.params),
          t.saved,
          functor,
          t.maskable,
          t.memory_bound,
          &t};
}

std::string describe(const ActivationInfo& info, c10::ArrayRef<double> params) {
  std::ostringstream os;
  os << info.name << "(";
  for (size_t i = 0; i < params.size(); ++i) {
    if (i) os << ", ";
    if (i < info.params.size()) os << info.params[i] << "=";
    os << params[i];
  }
  os << ")";
  return os.str();
}

}  // namespace

const std::vector<ActivationInfo>& activation_infos() {
  static const std::vector<ActivationInfo> infos = {
#define FA_INFO(F) info(ActId::F, #F, traits<act::F>()),
      FUSED_ACT_FOR_EACH_ACTIVATION(FA_INFO)
#undef FA_INFO
  };
  return infos;
}

std::vector<std::string> maskable_names() {
  std::vector<std::string> out;
  for (const ActivationInfo& info : activation_infos()) {
    if (info.maskable) out.push_back(info.name);
  }
  return out;
}

const ActivationInfo& find_activation(std::string_view name) {
  // Every op call looks its activation up; a scan of the list with string compares was ~40 ns.
  static const std::unordered_map<std::string_view, const ActivationInfo*> by_name = [] {
    std::unordered_map<std::string_view, const ActivationInfo*> m;
    for (const ActivationInfo& info : activation_infos()) m.emplace(info.name, &info);
    return m;
  }();
  if (const auto it = by_name.find(name); it != by_name.end()) return *it->second;
  std::ostringstream known;
  for (const ActivationInfo& info : activation_infos()) known << " " << info.name;
  TORCH_CHECK(false, "fused_act: unknown activation '", name, "'; known:", known.str());
}

void check_params(const ActivationInfo& info, c10::ArrayRef<double> params) {
  TORCH_CHECK(params.size() == info.params.size(), "fused_act.", info.name, ": expected ", info.params.size(),
              " parameter(s) (", c10::Join(", ", info.params), "), got ", params.size());
  const char* why = info.traits->invalid(padded(params));
  TORCH_CHECK_VALUE(why == nullptr, "fused_act.", describe(info, params), ": ", why ? why : "");
}

Saved saved_for(const ActivationInfo& info, c10::ArrayRef<double> params) {
  return info.traits->saved_for(padded(params));
}

}  // namespace fused_act
