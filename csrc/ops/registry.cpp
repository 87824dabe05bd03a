#include "registry.h"

#include <sstream>

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

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

// Detection of the optional functor hooks.
template <class A, class = void>
struct HasInvalid : std::false_type {};
template <class A>
struct HasInvalid<A, std::void_t<decltype(A::invalid(std::declval<Params<double>>()))>> : std::true_type {};

template <class A>
const char* invalid_for(const Params<double>& p) {
  if constexpr (HasInvalid<A>::value) {
    return A::invalid(p);
  } else {
    return nullptr;
  }
}

template <class A>
Saved resolve_saved(const Params<double>& p) {
  if constexpr (A::kSaved == Saved::kEither) {
    return A::output_ok(p) ? Saved::kOutput : Saved::kInput;
  } else {
    return A::kSaved;
  }
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
#define FA_INFO(F) \
  {ActId::F, act::F::kName, split_names(act::F::kParams), act::F::kSaved, #F, is_maskable<act::F>()},
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
  for (const ActivationInfo& info : activation_infos()) {
    if (info.name == name) return info;
  }
  std::ostringstream known;
  for (const ActivationInfo& info : activation_infos()) known << " " << info.name;
  TORCH_CHECK(false, "fused_act: unknown activation '", name, "'; known:", known.str());
}

void check_params(const ActivationInfo& info, c10::ArrayRef<double> params) {
  TORCH_CHECK(params.size() == info.params.size(), "fused_act.", info.name, ": expected ",
              info.params.size(), " parameter(s) (", c10::Join(", ", info.params), "), got ",
              params.size());
  const char* why = nullptr;
  visit_activation(info.id, [&](auto functor) { why = invalid_for<decltype(functor)>(padded(params)); });
  TORCH_CHECK_VALUE(why == nullptr, "fused_act.", describe(info, params), ": ", why ? why : "");
}

Saved saved_for(const ActivationInfo& info, c10::ArrayRef<double> params) {
  Saved saved = Saved::kNone;
  visit_activation(info.id, [&](auto functor) { saved = resolve_saved<decltype(functor)>(padded(params)); });
  return saved;
}

}  // namespace fused_act
