// Allure 3 report configuration: `npx allure generate reports/allure` reads it.
// The tree follows ahelm's hierarchy: aspect (parent suite) -> scenario (suite) -> group.
// Defect categories (gate failures, wrong answers, format failures, transport and audio errors)
// come from the same file the pytest plugin writes into the results for Allure 2.
import { readFileSync } from "node:fs";

const categories = JSON.parse(
  readFileSync(new URL("./ahelm/reports/allure_categories.json", import.meta.url), "utf-8"),
);

export default {
  name: "ahelm",
  output: "reports/allure-report",
  // Each generation appends to this file, so reusing the results folder builds up history.
  historyPath: "reports/allure-history.jsonl",
  categories,
  plugins: {
    awesome: {
      options: {
        groupBy: ["parentSuite", "suite", "subSuite"],
        // AHELM_ALLURE_SINGLE_FILE=1: one index.html with everything inlined, opened from disk.
        singleFile: process.env.AHELM_ALLURE_SINGLE_FILE === "1",
      },
    },
  },
};
