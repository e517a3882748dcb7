// cascade-simulate: a scenario's traffic through the real chain, against modelled provider accounts, in
// simulated time. Prints who answered, what it cost and which limits tripped; writes a plot.
//
//   cascade-simulate SCENARIO.json [--set PATH=VALUE]... [--json] [--svg FILE] [--title TEXT]
//
// Exit status: 0 when the simulation ran, 2 for bad usage or a scenario that cannot be read.
// The scenario format is in docs/economics.md; shipped scenarios are in examples/simulate/scenarios/.

#include <cascade/sim/run_scenario.hpp>

#include <boost/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

int usage(std::string const& why) {
    std::cerr << "cascade-simulate: " << why << "\n"
              << "usage: cascade-simulate SCENARIO.json [--set PATH=VALUE]... [--json] [--svg FILE] [--title TEXT]\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string path, svg, title;
    std::vector<std::string> sets;
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        std::string const a = argv[i];
        auto value = [&](char const* what) -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs " + what);
            return argv[++i];
        };
        try {
            if (a == "--set") sets.push_back(value("PATH=VALUE"));
            else if (a == "--svg") svg = value("a file name");
            else if (a == "--title") title = value("a title");
            else if (a == "--json") json = true;
            else if (a == "-h" || a == "--help") return usage("runs a scenario"), 0;
            else if (a.starts_with("-")) return usage("unknown option " + a);
            else if (path.empty()) path = a;
            else return usage("one scenario at a time");
        } catch (std::invalid_argument const& e) {
            return usage(e.what());
        }
    }
    if (path.empty()) return usage("no scenario given");
    std::ifstream in(path, std::ios::binary);
    if (!in) return usage("cannot read " + path);
    std::ostringstream text;
    text << in.rdbuf();
    try {
        boost::system::error_code ec;
        auto doc = boost::json::parse(text.str(), ec);
        if (ec) throw cascade::sim::ScenarioError(path + ": not valid JSON: " + ec.message());
        for (auto const& s : sets) cascade::sim::apply_override(doc, s);
        auto const scenario = cascade::sim::parse_scenario(boost::json::serialize(doc));
        auto const report = cascade::sim::run_scenario(scenario);
        if (json) std::cout << boost::json::serialize(cascade::sim::to_json(report)) << "\n";
        else std::cout << cascade::sim::to_text(report);
        if (!svg.empty()) {
            std::ofstream out(svg, std::ios::binary);
            out << cascade::sim::render_svg(cascade::sim::plot_input(report, title.empty() ? scenario.name : title));
            if (!out) {
                std::cerr << "cascade-simulate: cannot write " << svg << "\n";
                return 2;
            }
        }
    } catch (cascade::sim::ScenarioError const& e) {
        std::cerr << "cascade-simulate: " << path << ": " << e.what() << "\n";
        return 2;
    }
    return 0;
}
