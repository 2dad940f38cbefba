export { useTask, useTaskAction, type TaskDetail } from "./api/tasks";
export { TaskActionButton } from "./components/task-action-button";
