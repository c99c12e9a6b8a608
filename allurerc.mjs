// Allure 3 report configuration: `npx allure generate reports/allure` reads it.
// The tree follows ahelm's hierarchy: aspect (parent suite) -> scenario (suite) -> group.
export default {
  name: "ahelm",
  output: "reports/allure-report",
  plugins: {
    awesome: {
      options: {
        groupBy: ["parentSuite", "suite", "subSuite"],
      },
    },
  },
};
