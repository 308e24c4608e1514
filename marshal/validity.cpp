#include "busgate/marshal/validity.h"

namespace busgate::marshal {

std::string_view describe(Validity validity) {
    switch (validity) {
#define BUSGATE_VALIDITY_CASE(name, text) \
    case Validity::name:                  \
        return text;
        BUSGATE_VALIDITY_TABLE(BUSGATE_VALIDITY_CASE)
#undef BUSGATE_VALIDITY_CASE
    }
    return "unknown";
}

}  // namespace busgate::marshal
