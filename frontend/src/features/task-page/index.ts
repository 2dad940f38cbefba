export { TaskPage } from "./components/task-page";
